#!/usr/bin/env python3
"""Independent end-to-end reference for `larv merge` (numpy, float64).

Reads the same safetensors pool, recomputes the merge from the spec
(../shared/spec/ALGORITHMS.md) the way FusionBench's PyTorch code does it
(plain SVDs, the whole model in memory, TIES's global kthvalue), recomputes
LARV's proxies, scores and scales with the naive formulas, and compares:
  - every merged tensor against larv's output file (1e-5 relative, Frobenius),
  - the LARV table in larv's JSON report against its own.
Written apart from the C code on purpose: it shares no code with larv.

Inputs may be safetensors files, sharded indexes (*.safetensors.index.json)
or model directories (their model.safetensors, else model.safetensors.index.json),
in F32/F16/BF16 (mixed: tau is formed in float64 after widening). The merged
set is the tensors every task has (--include: those matching); tensors only
the base has are absent from the output, or the base's with --keep-base-only.
The output's dtypes are checked too: the base's, float ones in --out-dtype.

usage: merge_ref.py --method M --base B --task T [--task T ...] --merged OUT
                    [--report R.json] [--lambda X] [--larv RULE] [--ties-k K]
                    [--ties-merge sum|mean|max] [--iso-common F] [--exclude GLOB ...]
                    [--larv-proxy GLOB ...] [--include GLOB ...] [--keep-base-only]
                    [--out-dtype F32|F16|BF16]
Exit 0 when everything agrees, 1 otherwise (with the differences printed).
"""
import argparse
import fnmatch
import json
import math
import os
import re
import struct
import sys

import numpy as np

NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
      "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
FLOATS = ("F32", "F64", "F16", "BF16")


def load(path):
    """A safetensors file, a sharded index or a model directory -> (tensors, metadata)."""
    if os.path.isdir(path):
        one = os.path.join(path, "model.safetensors")
        path = one if os.path.isfile(one) else os.path.join(path, "model.safetensors.index.json")
    if path.endswith(".index.json"):
        ix = json.load(open(path))
        out = {}
        for shard in sorted(set(ix["weight_map"].values())):
            out.update(load_file(os.path.join(os.path.dirname(path), shard))[0])
        assert sorted(out) == sorted(ix["weight_map"]), path
        return out, ix.get("metadata", {})
    return load_file(path)


def load_file(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        if v["dtype"] == "BF16":
            a = (np.frombuffer(data[b:e], np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(data[b:e], NP[v["dtype"]])
        out[k] = (v["dtype"], a.reshape(v["shape"]))
    return out, hdr.get("__metadata__", {})


BLOCK = re.compile(r"(?:^|\.)(layers|resblocks|layer|block|h)\.(\d+)\.")


def block_of(name):
    """(stack, block) from the leftmost block key of the name (spec "Layers": T5's
    encoder.block.3.layer.1. is block 3 of stack encoder.block), or None."""
    m = BLOCK.search(name)
    if not m:
        return None
    return name[:m.end(1)], int(m.group(2))


def svd(a):
    return np.linalg.svd(a, full_matrices=False)


def polar(a):
    p, _, qt = svd(a)
    return p @ qt


def tsv(taus):
    m, n = taus[0].shape
    r, T = min(m, n), len(taus)
    k = r // T
    if k == 0:
        return np.zeros((m, n))
    Us, Ss, Vs = [], [], []
    for t in taus:
        u, s, vt = svd(t)
        Us.append(u[:, :k]); Ss.append(s[:k]); Vs.append(vt[:k].T)
    U, S, V = np.hstack(Us), np.concatenate(Ss), np.hstack(Vs)
    return polar(U) @ np.diag(S) @ polar(V).T


def iso_c(taus):
    u, s, vt = svd(sum(taus))
    return s.mean() * (u @ vt)


def iso_cts(taus, f):
    m, n = taus[0].shape
    r, T = min(m, n), len(taus)
    c = int(math.floor(r * f))
    s_ = int(round((r - c) / T)) * T  # Python's round is half-to-even, as the reference's
    c = r - s_
    d = int(math.floor((r - c) / T))
    u, s, vt = svd(sum(taus))
    Uc, Sc, Vc = u[:, :c], s[:c], vt[:c].T
    Us, Ss, Vs = [], [], []
    for t in taus:
        tp = t - Uc @ (Uc.T @ t)
        ut, st, vtt = svd(tp)
        Us.append(ut[:, :d]); Ss.append(st[:d]); Vs.append(vtt[:d].T)
    U = np.hstack(Us + [Uc]); S = np.concatenate(Ss + [Sc]); V = np.hstack(Vs + [Vc])
    return S.mean() * (polar(U) @ polar(V).T)


def reff(a):
    s2 = np.linalg.svd(a, compute_uv=False) ** 2
    tot = s2.sum()
    if tot == 0:
        return 0.0
    p = s2 / tot
    p = p[p > 0]
    return float(math.exp(-(p * np.log(p)).sum()))


def conflict(w0, d):
    left = np.linalg.norm(w0 @ d.T - d @ w0.T)
    right = np.linalg.norm(w0.T @ d - d.T @ w0)
    return 0.5 * (left + right) / (np.linalg.norm(w0) * np.linalg.norm(d) + 1e-10)


def scales(rule, e, c, o):
    """Untouched blocks (e is None: every update zero) are left out of the
    standardisation and the quantiles; their chat and score are None, scale 1."""
    L = len(e)
    on = [l for l in range(L) if e[l] is not None]
    chat, score, s = [None] * L, [None] * L, [1.0] * L
    if not on:
        return chat, score, s
    ev, cv = np.array([e[l] for l in on]), np.array([c[l] for l in on])
    std = cv.std()
    ch = (cv - cv.mean()) / (std if std >= 1e-8 else 1.0)
    depth = (np.array(on) + 1) / L
    sc = ev ** o["eta"] * depth ** o["rho"] / (1 + np.logaddexp(0, ch))
    if rule == "tiered3":
        q1, q2 = np.quantile(sc, [1 / 3, 2 / 3])
        st = np.where(sc <= q1, o["s_low"], np.where(sc <= q2, o["s_mid"], o["s_high"]))
    elif rule == "tiered2":
        med = np.quantile(sc, 0.5)
        st = np.where(sc <= med, o["s_low"], o["s_high"])
    elif rule == "continuous":
        st = 1 + 0.5 * np.tanh(o["gamma"] * (sc - 1))
    elif rule == "depth":
        st = o["s_low"] + (o["s_high"] - o["s_low"]) * np.array(on) / max(L - 1, 1)
    else:
        st = np.ones(len(on))
    for k, l in enumerate(on):
        chat[l], score[l], s[l] = float(ch[k]), float(sc[k]), float(st[k])
    return chat, score, s


FIRST_MLP = (".mlp.fc1.", ".mlp.c_fc.", ".intermediate.dense.", ".DenseReluDense.wi.",
             ".DenseReluDense.wi_0.")


def is_first_mlp(name):
    """LARV's default proxy: the block's first MLP matrix (spec "Proxy matrices")."""
    return any(k in name for k in FIRST_MLP)


def rel(a, b):
    den = np.linalg.norm(b)
    return np.linalg.norm(a - b) / (den if den > 0 else 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--task", action="append", required=True)
    ap.add_argument("--merged", required=True)
    ap.add_argument("--report")
    ap.add_argument("--lambda", dest="lam", type=float)
    ap.add_argument("--larv", default="tiered3")
    ap.add_argument("--ties-k", type=float, default=0.2)
    ap.add_argument("--ties-merge", default="sum")
    ap.add_argument("--iso-common", type=float, default=0.8)
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--larv-proxy", action="append", default=[])
    ap.add_argument("--include", action="append", default=[])
    ap.add_argument("--keep-base-only", action="store_true")
    ap.add_argument("--out-dtype", default=None)
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    opts = dict(eta=1.0, rho=0.5, gamma=3.0, s_low=0.5, s_mid=1.0, s_high=1.2)
    lam = a.lam if a.lam is not None else {"ta": 0.3, "ties": 0.3}.get(a.method, 1.0)

    base, _ = load(a.base)
    tasks = [load(p)[0] for p in a.task]
    merged, meta = load(a.merged)
    T = len(tasks)
    inc = lambda nm: not a.include or any(fnmatch.fnmatchcase(nm, p) for p in a.include)
    # the merged set: what every task has; tensors only the base has: left out or kept
    names = sorted(nm for nm in base if inc(nm) and all(nm in t for t in tasks))
    kept = sorted(nm for nm in base if inc(nm) and a.keep_base_only
                  and not any(nm in t for t in tasks))
    excluded = lambda nm: any(fnmatch.fnmatchcase(nm, p) for p in a.exclude)
    is_float = lambda nm: base[nm][0] in FLOATS
    is_matrix = lambda nm: is_float(nm) and base[nm][1].ndim == 2 and not excluded(nm)
    f64 = lambda arr: arr.astype(np.float64)
    # stacks: each with its own blocks 0..L-1 and its own standardisation and quantiles
    stacks = {}
    for nm in names:
        if block_of(nm) is not None:
            st, b = block_of(nm)
            stacks[st] = max(stacks.get(st, 0), b + 1)

    # LARV: proxies per block from the naive formulas, scores and scales per stack
    scale = {}
    ok = True
    if a.larv != "off" and stacks:
        es, cs = {}, {}
        has_mlp = {block_of(nm) for nm in names
                   if block_of(nm) is not None and is_matrix(nm) and is_first_mlp(nm)}
        for nm in names:
            b = block_of(nm)
            if b is None or not is_matrix(nm):
                continue
            if a.larv_proxy:
                if not any(fnmatch.fnmatchcase(nm, p) for p in a.larv_proxy):
                    continue  # proxies from the matching matrices only (every matrix is scaled)
            elif b in has_mlp and not is_first_mlp(nm):
                continue  # default: the first MLP matrix, else every matrix of the block
            w0 = f64(base[nm][1])
            r0 = reff(w0)
            for t in tasks:
                d = f64(t[nm][1]) - w0
                if not d.any():
                    continue  # an untouched update carries no signal
                es.setdefault(b, []).append(r0 / (reff(d) + 1e-8))
                cs.setdefault(b, []).append(conflict(w0, d))
        rep = json.load(open(a.report)) if a.report else None
        if rep:
            # one stack: every layer's stack is it; several: (stack, name) pairs
            layers = {(x.get("stack"), x["name"]): x for x in rep["layers"]}
        for st, L in stacks.items():
            e = [float(np.mean(es[(st, l)])) if es.get((st, l)) else None for l in range(L)]
            c = [float(np.mean(cs[(st, l)])) if cs.get((st, l)) else None for l in range(L)]
            chat, score, s = scales(a.larv, e, c, opts)
            for l in range(L):
                scale[(st, l)] = float(s[l])
            if not rep:
                continue
            for l in range(L):
                x = layers.get((st, str(l)))
                if x is None:
                    print(f"LARV: no layer {l} of stack {st} in the report")
                    ok = False
                    continue
                for key, want in (("effective_rank_contrast", e[l]), ("conflict", c[l]),
                                  ("score", score[l]), ("scale", s[l])):
                    got = x[key]
                    if want is None:  # untouched block: no proxies, no score
                        if got is not None:
                            print(f"LARV {key} of {st} block {l}: larv {got}, reference none (untouched)")
                            ok = False
                        continue
                    if got is None or abs(got - want) > 1e-7 * max(1.0, abs(want)):
                        print(f"LARV {key} of {st} block {l}: larv {got}, reference {want}")
                        ok = False
    sc = lambda nm: scale.get(block_of(nm), 1.0) if block_of(nm) is not None else 1.0

    expect = {}
    if a.method == "ties":
        keep = [nm for nm in names if is_float(nm) and not excluded(nm)]
        # tau in float32 as the reference (fl32(theta_t - theta_0)), LARV-scaled in float32
        flat = np.stack([np.concatenate([
            ((t[nm][1].astype(np.float32) - base[nm][1].astype(np.float32))
             * np.float32(sc(nm))).ravel() for nm in keep]) for t in tasks])
        D = flat.shape[1]
        # keep the kk largest |tau| per task; k = 1 keeps all (kk = 0 would index -1,
        # the largest, in np.partition): at least one, as larv
        kk = max(1, D - int(math.floor(D * a.ties_k)))
        thr = np.partition(np.abs(flat), kk - 1, axis=1)[:, kk - 1]
        trimmed = np.where(np.abs(flat) >= thr[:, None], flat, 0).astype(np.float64)
        tot = trimmed.sum(axis=0)
        gamma = np.sign(tot)
        # FusionBench's resolve_zero_signs: the sign of the count of coordinate signs
        majority = np.sign(gamma.sum())
        gamma[gamma == 0] = majority
        sel = ((gamma > 0) & (trimmed > 0)) | ((gamma < 0) & (trimmed < 0))
        if a.ties_merge == "sum":
            mv = np.where(sel, trimmed, 0).sum(axis=0)
        elif a.ties_merge == "mean":
            mv = np.where(sel, trimmed, 0).sum(axis=0) / np.maximum(sel.sum(axis=0), 1)
        else:
            mv = np.where(sel, np.abs(trimmed), 0).max(axis=0) * gamma
        off = 0
        for nm in keep:
            n = base[nm][1].size
            expect[nm] = f64(base[nm][1]) + lam * mv[off:off + n].reshape(base[nm][1].shape)
            off += n
    for nm in kept:
        expect[nm] = base[nm][1]
    for nm in names:
        if nm in expect:
            continue
        if not is_float(nm) or (a.method == "ties" and excluded(nm)):
            expect[nm] = base[nm][1]
            continue
        w0 = f64(base[nm][1])
        taus = [sc(nm) * (f64(t[nm][1]) - w0) for t in tasks]
        if is_matrix(nm) and a.method in ("tsv", "iso-c", "iso-cts"):
            M = {"tsv": tsv, "iso-c": iso_c, "iso-cts": lambda x: iso_cts(x, a.iso_common)}[a.method](taus)
        elif a.method == "ta":
            M = sum(taus)
        else:
            M = sum(taus) / T
        expect[nm] = w0 + lam * M

    worst = 0.0
    if sorted(merged) != sorted(names + kept):
        extra = sorted(set(merged) - set(names + kept))
        missing = sorted(set(names + kept) - set(merged))
        print(f"tensor set differs: {len(extra)} unexpected (e.g. {extra[:3]}), "
              f"{len(missing)} missing (e.g. {missing[:3]})")
        return 1
    # the output dtype: the base's; float tensors in --out-dtype when given
    ulp = {"F32": 0.0, "F64": 0.0, "F16": 2.0 ** -11, "BF16": 2.0 ** -8}
    for nm in sorted(names + kept):
        dt, got = merged[nm]
        bdt = base[nm][0]
        want_dt = a.out_dtype if a.out_dtype and bdt in FLOATS else bdt
        if dt != want_dt:
            print(f"{nm}: dtype {dt}, expected {want_dt}")
            ok = False
        want = expect[nm]
        tol = a.tol + ulp.get(dt, 0.0)
        if dt not in FLOATS:
            if not np.array_equal(got, want):
                print(f"{nm}: non-float tensor differs from the base")
                ok = False
            continue
        err = rel(f64(got), f64(want))
        worst = max(worst, err)
        if err > tol:
            print(f"{nm}: relative difference {err:.3e} > {tol:g}")
            ok = False
    print(f"reference {a.method} (LARV {a.larv}, T={T}): {len(names)} merged + {len(kept)} kept "
          f"tensors, worst relative "
          f"difference {worst:.3e}: {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

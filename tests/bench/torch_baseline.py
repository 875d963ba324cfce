#!/usr/bin/env python3
"""PyTorch CPU baseline for the benchmarks: the same math as larv's mergers,
done the way FusionBench does it -- every task vector in memory at once, float32,
torch.linalg.svd(full_matrices=False) per matrix. Written for this benchmark
(no FusionBench code). Prints one JSON line: load/compute/save seconds and peak RSS.

usage: torch_baseline.py --method ta|ties|tsv|iso-c|iso-cts --pool DIR --tasks T --out FILE
                         [--threads N] [--ties-k K] [--lambdas L1,L2,...]

--lambdas: a lambda grid, as a careful PyTorch user would run it: the merged
update M of each tensor is computed once (one set of SVDs) and one output per
lambda written, theta0 + lambda M; --out is then a template with {lambda}.

TIES as FusionBench: each task vector flattened over all float tensors, trimmed
to its top-k magnitudes (torch.kthvalue), sign elected by the sum, disjoint sum.
"""
import argparse
import json
import math
import resource
import struct
import time

import numpy as np
import torch


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", "baseline reads F32 pools"
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data, np.float32, (e - b) // 4, b).reshape(v["shape"]).copy())
    return out


def save(path, sd):
    names = sorted(sd)
    hdr, off, blobs = {}, 0, []
    for k in names:
        b = sd[k].contiguous().numpy().astype(np.float32).tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(sd[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def polar(a):
    u, _, vh = torch.linalg.svd(a, full_matrices=False)
    return u @ vh


def tsv(taus):
    m, n = taus[0].shape
    T = len(taus)
    k = min(m, n) // T
    us, ss, vs = [], [], []
    for t in taus:
        u, s, vh = torch.linalg.svd(t, full_matrices=False)
        us.append(u[:, :k]); ss.append(s[:k]); vs.append(vh[:k].T)
    U, S, V = torch.cat(us, 1), torch.cat(ss), torch.cat(vs, 1)
    return polar(U) @ torch.diag(S) @ polar(V).T


def iso_c(taus):
    u, s, vh = torch.linalg.svd(sum(taus), full_matrices=False)
    return s.mean() * (u @ vh)


def iso_cts(taus, f=0.8):
    m, n = taus[0].shape
    r, T = min(m, n), len(taus)
    c = int(math.floor(r * f)); s_ = round((r - c) / T) * T; c = r - s_; d = (r - c) // T
    u, s, vh = torch.linalg.svd(sum(taus), full_matrices=False)
    Uc, Sc, Vc = u[:, :c], s[:c], vh[:c].T
    us, ss, vs = [], [], []
    for t in taus:
        tp = t - Uc @ (Uc.T @ t)
        ut, st, vt = torch.linalg.svd(tp, full_matrices=False)
        us.append(ut[:, :d]); ss.append(st[:d]); vs.append(vt[:d].T)
    U = torch.cat(us + [Uc], 1); S = torch.cat(ss + [Sc]); V = torch.cat(vs + [Vc], 1)
    return S.mean() * (polar(U) @ polar(V).T)


def ties(tvs, names, k):
    flat = torch.stack([torch.cat([tv[n].reshape(-1) for n in names]) for tv in tvs])
    D = flat.shape[1]
    kk = D - int(math.floor(D * k))
    for t in range(flat.shape[0]):  # keep |x| >= the kk-th smallest magnitude
        thr = flat[t].abs().kthvalue(kk).values
        flat[t][flat[t].abs() < thr] = 0
    gamma = torch.sign(flat.sum(0))
    majority = torch.sign(gamma.sum())
    gamma[gamma == 0] = majority
    sel = torch.where(gamma > 0, flat > 0, flat < 0)
    mv = (flat * sel).sum(0)
    out, off = {}, 0
    for n in names:
        c = tvs[0][n].numel()
        out[n] = mv[off:off + c].reshape(tvs[0][n].shape)
        off += c
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", required=True)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ties-k", type=float, default=0.2)
    ap.add_argument("--lambdas", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    base = load(f"{a.pool}/base.safetensors")
    tvs = []
    for t in range(1, a.tasks + 1):
        ft = load(f"{a.pool}/task{t:02d}.safetensors")
        tvs.append({k: ft[k] - base[k] for k in base})
        del ft
    t1 = time.time()
    lam = 0.3 if a.method in ("ta", "ties") else 1.0
    grid = [float(v) for v in a.lambdas.split(",")] if a.lambdas else None
    merged = {}
    with torch.no_grad():
        if a.method == "ties":
            tm = ties(tvs, sorted(base), a.ties_k)
            for k in base:
                merged[k] = tm[k] if grid else base[k] + lam * tm[k]
        for k in ([] if a.method == "ties" else base):
            taus = [tv[k] for tv in tvs]
            if taus[0].dim() == 2 and a.method != "ta":
                M = {"tsv": tsv, "iso-c": iso_c, "iso-cts": iso_cts}[a.method](taus)
            elif a.method == "ta":
                M = sum(taus)
            else:
                M = sum(taus) / len(taus)
            merged[k] = M if grid else base[k] + lam * M
    t2 = time.time()
    if grid:
        with torch.no_grad():
            upd = merged  # M per tensor, computed once
            for g, txt in zip(grid, a.lambdas.split(",")):
                save(a.out.replace("{lambda}", txt), {k: base[k] + g * upd[k] for k in base})
    else:
        save(a.out, merged)
    t3 = time.time()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"method": a.method, "load_s": t1 - t0, "compute_s": t2 - t1, "save_s": t3 - t2,
                      "total_s": t3 - t0, "peak_rss_bytes": rss, "threads": a.threads}))


if __name__ == "__main__":
    main()

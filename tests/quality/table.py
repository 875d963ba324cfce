#!/usr/bin/python3
"""The accuracy table on a real task pool (not in CI; tests/quality/table.sh runs it).

For every merger x LARV variant: the test accuracy at the merger's default lambda,
and at the lambda chosen on the validation split from one grid per merger
(TA/TIES: 0.1 0.2 0.3 0.4 0.5 0.7 1.0; TSV-M/Iso: 0.25 0.5 0.75 1.0 1.5 2.0).
The grid is evaluated on merges interpolated from larv's lambda = 1 output
(theta0 + lambda (theta1 - theta0), float64: every merger is linear in lambda);
every test number comes from a real `larv merge` at that lambda.
Also base and fine-tuned rows, and a validation-only check of LARV's tier values.

usage: table.py [--pool DIR] [--larv BIN] [--jobs N] [--json OUT.json] [--methods ...]
                [--variants ...] [--tiers] [--quick VARIANT ...]
Prints Markdown tables; --json writes every number (and is reused as a cache:
entries already there are not recomputed).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from accuracy import Pool  # noqa: E402
from clip_vision import load_checkpoint  # noqa: E402

METHODS = ["ta", "ties", "tsv", "iso-c", "iso-cts"]
NAMES = {"ta": "Task Arithmetic", "ties": "TIES", "tsv": "TSV-M", "iso-c": "Iso-C",
         "iso-cts": "Iso-CTS"}
DEFAULT_LAMBDA = {"ta": 0.3, "ties": 0.3, "tsv": 1.0, "iso-c": 1.0, "iso-cts": 1.0}
GRID = {"ta": [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0], "ties": [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0],
        "tsv": [0.25, 0.5, 0.75, 1.0, 1.5, 2.0], "iso-c": [0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
        "iso-cts": [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]}
# LARV variants of the table: name -> larv merge arguments
VARIANTS = {
    "off": ["--larv", "off"],
    "tiered2": ["--larv", "tiered2"],
    "tiered3": ["--larv", "tiered3"],
    "continuous": ["--larv", "continuous"],
    "depth": ["--larv", "depth"],
    "tiered3, every matrix": ["--larv", "tiered3", "--larv-proxy", "*"],
}
# variants evaluated at the default lambda only (--quick), the grid being the
# costly part (numpy on 2 loaded cores); the val split at the default lambda
# and, for tier values, at the lambda the validation split chose for LARV off
# tier values checked on the validation split only (--tiers)
TIERS = {
    "tiered3 0.8/1.0/1.2": ["--larv", "tiered3", "--s-low", "0.8"],
    "tiered3 0.5/1.0/1.5": ["--larv", "tiered3", "--s-high", "1.5"],
}

_pool = None


def _init(pool_dir, tasks):
    global _pool
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _pool = Pool(pool_dir, tasks)


def _eval(job):
    """job: (split, path, base_path or None, lambda or None[, tasks])."""
    split, path, base, lam = job[:4]
    tasks = job[4] if len(job) > 4 else None
    t = load_checkpoint(path)
    if base is not None:  # theta0 + lambda (theta1 - theta0)
        b = load_checkpoint(base)
        t = {k: (b[k].astype(np.float64) + lam * (v.astype(np.float64) - b[k].astype(np.float64)))
             if v.dtype.kind == "f" else v for k, v in t.items()}
    return _pool.accuracy(t, split, tasks)


def main():
    ap = argparse.ArgumentParser()
    src = os.path.dirname(os.path.dirname(HERE))
    ap.add_argument("--pool", default=os.path.join(src, "..", "shared", "pools", "tiny-real-8"))
    ap.add_argument("--larv", default=os.path.join(src, "build", "larv"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--tiers", action="store_true", help="also the tier-value check (val only)")
    ap.add_argument("--quick", nargs="*", default=[],
                    help="variants evaluated at the default lambda only (no grid)")
    a = ap.parse_args()
    t_start = time.time()
    pool = Pool(a.pool)
    tasks = pool.tasks
    res = {}
    if a.json and os.path.exists(a.json):
        res = json.load(open(a.json))
    save = lambda: a.json and json.dump(res, open(a.json, "w"), indent=1, sort_keys=True)
    work = tempfile.mkdtemp(prefix="larv-table-")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1")
    base = os.path.join(a.pool, "base.safetensors")
    task_args = [x for t in tasks for x in ("--task", os.path.join(a.pool, t + ".safetensors"))]
    merge_s = [0.0]

    def merge(method, vargs, lam, out):
        t0 = time.time()
        cmd = [a.larv, "merge", "--method", method, "--base", base, *task_args, "--out", out,
               "--lambda", repr(lam), "--quiet", *vargs]
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        merge_s[0] += time.time() - t0
        return out

    ex = ProcessPoolExecutor(a.jobs, initializer=_init, initargs=(a.pool, tasks))
    # base and fine-tuned (each on its own task)
    if "base" not in res:
        res["base"] = {"test": ex.submit(_eval, ("test", base, None, None)).result()}
    if "finetuned" not in res:
        futs = {t: ex.submit(_eval, ("test", os.path.join(a.pool, t + ".safetensors"), None, None, [t]))
                for t in tasks}
        ft = {t: futs[t].result()[t] for t in tasks}
        res["finetuned"] = {"test": {"average": float(np.mean(list(ft.values()))), **ft}}
    save()
    variants = {k: VARIANTS[k] if k in VARIANTS else TIERS[k] for k in a.variants}
    if a.tiers:
        variants.update({k: v for k, v in TIERS.items() if k not in variants})
    for vname, vargs in variants.items():
        for m in a.methods:
            key = f"{m} | {vname}"
            r = res.setdefault(key, {})
            quick = vname in a.quick
            grid = GRID[m]
            if quick:
                grid = [DEFAULT_LAMBDA[m]]
                ref = res.get(f"{m} | off", {}).get("lambda_val")
                if vname in TIERS and ref is not None and ref not in grid:
                    grid.append(ref)
            pre = None  # quick: the test evaluation runs beside the validation one
            if quick and vname not in TIERS and r.get("test_default", {}).get("lambda") != grid[0]:
                out = merge(m, vargs, grid[0], os.path.join(work, "q.safetensors"))
                pre = ex.submit(_eval, ("test", out, None, None))
            if "val" not in r or any(repr(lam) not in r["val"] for lam in grid):
                one = merge(m, vargs, 1.0, os.path.join(work, "one.safetensors"))
                keep = os.path.join(work, f"{m}-{len(res)}.safetensors")
                os.replace(one, keep)
                r.setdefault("val", {})
                futs = {lam: ex.submit(_eval, ("val", keep, base, lam)) for lam in grid
                        if repr(lam) not in r["val"]}
                r["val"].update({repr(lam): f.result() for lam, f in futs.items()})
                os.remove(keep)
            r["quick"] = quick
            best = max(grid, key=lambda lam: (r["val"][repr(lam)]["average"], -abs(lam - DEFAULT_LAMBDA[m])))
            r["lambda_val"] = best
            if vname in TIERS:
                save()
                vals = ", ".join(f"{lam:g}: {100 * r['val'][repr(lam)]['average']:.1f}" for lam in grid)
                print(f"[table] {key}: val {vals}", file=sys.stderr)
                continue
            if quick:
                best = DEFAULT_LAMBDA[m]
            if pre is not None:
                r["test_default"] = {"lambda": best, **pre.result()}
            todo = {"test_default": DEFAULT_LAMBDA[m], "test_best": best}
            for k, lam in todo.items():
                if k in r and r[k].get("lambda") == lam:
                    continue
                if k == "test_best" and best == DEFAULT_LAMBDA[m]:
                    r[k] = dict(r["test_default"])
                    continue
                out = merge(m, vargs, lam, os.path.join(work, "t.safetensors"))
                r[k] = {"lambda": lam, **ex.submit(_eval, ("test", out, None, None)).result()}
            save()
            print(f"[table] {key}: default {100 * r['test_default']['average']:.1f}, "
                  f"val-chosen lambda {best} {100 * r['test_best']['average']:.1f} "
                  f"({time.time() - t_start:.0f} s)", file=sys.stderr)
    ex.shutdown()
    res["_meta"] = {"seconds": round(time.time() - t_start), "merge_seconds": round(merge_s[0], 1),
                    "jobs": a.jobs, "grid": GRID}
    save()
    report(res, a.methods, list(variants), tasks)


def pct(x):
    return f"{100 * x:.1f}"


def report(res, methods, variants, tasks):
    print(f"base {pct(res['base']['test']['average'])} %, fine-tuned (each on its own task) "
          f"{pct(res['finetuned']['test']['average'])} % (test split)\n")
    tab = [v for v in variants if v in VARIANTS]
    print("Test accuracy (%), average over the 8 tasks; default lambda | lambda chosen on val (lambda)\n")
    print("| LARV | " + " | ".join(NAMES[m] for m in methods) + " | mean |")
    print("|---" * (len(methods) + 2) + "|")
    for v in tab:
        cells, d, b = [], [], []
        for m in methods:
            r = res.get(f"{m} | {v}")
            if not r or "test_best" not in r:
                cells.append("-")
                continue
            d.append(r["test_default"]["average"])
            if r.get("quick"):
                cells.append(f"{pct(d[-1])} \\| -")
                continue
            b.append(r["test_best"]["average"])
            cells.append(f"{pct(d[-1])} \\| {pct(b[-1])} ({r['lambda_val']:g})")
        mean = (f"{pct(np.mean(d))} \\| " + (pct(np.mean(b)) if len(b) == len(d) else "-")) if d else "-"
        print(f"| {v} | " + " | ".join(cells) + f" | {mean} |")
    print("\nValidation accuracy (%), average over tasks: at the default lambda | best on the grid "
          "(tier rows: at the lambda chosen for LARV off)\n")
    print("| LARV | " + " | ".join(NAMES[m] for m in methods) + " | mean |")
    print("|---" * (len(methods) + 2) + "|")
    for v in variants:
        cells, d, b = [], [], []
        for m in methods:
            r = res.get(f"{m} | {v}")
            if not r or "val" not in r:
                cells.append("-")
                continue
            d.append(r["val"][repr(DEFAULT_LAMBDA[m])]["average"])
            if r.get("quick"):  # tier values: at the lambda the validation chose for LARV off
                ref = res.get(f"{m} | off", {}).get("lambda_val")
                if v not in TIERS or ref is None or repr(ref) not in r["val"]:
                    cells.append(f"{pct(d[-1])} \\| -")
                    continue
                b.append(r["val"][repr(ref)]["average"])
            else:
                b.append(max(x["average"] for x in r["val"].values()))
            cells.append(f"{pct(d[-1])} \\| {pct(b[-1])}")
        mean = (f"{pct(np.mean(d))} \\| " + (pct(np.mean(b)) if len(b) == len(d) else "-")) if d else "-"
        print(f"| {v} | " + " | ".join(cells) + f" | {mean} |")
    if "_meta" in res:
        mt = res["_meta"]
        print(f"\n{mt['seconds']} s in all ({mt['merge_seconds']} s of larv merges), {mt['jobs']} "
              f"evaluation processes")


if __name__ == "__main__":
    sys.exit(main())

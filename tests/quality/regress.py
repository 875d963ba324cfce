#!/usr/bin/python3
"""Accuracy regression on a real pool (run by tests/cli_accuracy.sh, one rank).

  1. the numpy forward pass (clip_vision.py) matches the pool's reference_logits.h5
     (features and logits of the base model) to 1e-5, in float32 and float64;
  2. the base model's test accuracy equals the pool's manifest (to 0.05 points);
  3. each merge recorded in recorded.json (a handful of mergers and LARV rules at
     their default lambda) is run with `larv merge` and its average test accuracy
     must stay within `tolerance_points` (0.5) of the recorded number: a numerical
     change that keeps the formulas' 1e-5 but breaks a model is caught.

usage: regress.py POOL_DIR LARV_COMMAND... [--record]   (--record rewrites recorded.json)
Prints "N passed, N failed"; exit 1 on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from accuracy import Pool  # noqa: E402
from clip_vision import CLIPVision, load_checkpoint  # noqa: E402

RECORDED = os.path.join(HERE, "recorded.json")


def main():
    argv = sys.argv[1:]
    record = "--record" in argv
    argv = [x for x in argv if x != "--record"]
    pool_dir, larv = argv[0], argv[1:]
    rec = json.load(open(RECORDED))
    passed = failed = 0

    def check(ok, msg):
        nonlocal passed, failed
        print(("ok:   " if ok else "FAIL: ") + msg)
        passed, failed = passed + bool(ok), failed + (not ok)

    import h5py
    pool = Pool(pool_dir)
    base = os.path.join(pool_dir, "base.safetensors")
    tensors = load_checkpoint(base)
    with h5py.File(os.path.join(pool_dir, "reference_logits.h5"), "r") as r:
        for dt in (np.float64, np.float32):
            m = CLIPVision(pool.cfg, tensors, dt)
            worst = 0.0
            for t in r:
                f = m.features(r[t]["images"][()]).astype(np.float64)
                lg = f @ pool.heads[t].T
                worst = max(worst, np.abs(f - r[t]["features"][()]).max(),
                            np.abs(lg - r[t]["logits"][()]).max())
            check(worst <= 1e-5, f"forward pass ({np.dtype(dt).name}) vs reference_logits.h5: "
                  f"max abs difference {worst:.2e} (<= 1e-5)")
    acc = pool.accuracy(tensors, "test")
    want = pool.manifest["average_test"]["base"]
    check(abs(acc["average"] - want) <= 5e-4,
          f"base test accuracy {100 * acc['average']:.2f} % (manifest {100 * want:.2f} %)")

    tol = rec["tolerance_points"] / 100
    work = tempfile.mkdtemp(prefix="larv-regress-")
    tasks = [x for t in pool.tasks for x in ("--task", os.path.join(pool_dir, t + ".safetensors"))]
    for e in rec["merges"]:
        out = os.path.join(work, "m.safetensors")
        cmd = [*larv, "merge", "--base", base, *tasks, "--out", out, "--quiet", *e["args"]]
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            check(False, f"larv merge {' '.join(e['args'])}: exit {p.returncode}: {p.stderr[-500:]}")
            continue
        got = pool.accuracy(out, "test")["average"]
        if record:
            e["average"] = round(got, 6)
        check(abs(got - e["average"]) <= tol,
              f"{' '.join(e['args'])}: test accuracy {100 * got:.2f} % (recorded "
              f"{100 * e['average']:.2f} %, tolerance {rec['tolerance_points']} points)")
        os.remove(out)
    os.rmdir(work)
    if record:
        json.dump(rec, open(RECORDED, "w"), indent=1)
        print(f"recorded {RECORDED}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

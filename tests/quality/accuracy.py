#!/usr/bin/python3
"""Per-task and average accuracy of a checkpoint on a task pool (tests and
benchmarks only; numpy + h5py).

usage: accuracy.py POOL_DIR CHECKPOINT [--split test|val] [--tasks a,b,...] [--float64]

POOL_DIR is a pool in the tiny-real-8 layout (config.json, heads.h5, eval.h5,
manifest.json: see its README.md); CHECKPOINT is anything larv reads or writes:
a safetensors file, a model directory (model.safetensors, or
model.safetensors.index.json + shards) or a larv .h5 file. A task's prediction is
argmax of feature . head^T, its head being heads.h5/<task> (rows normalised, the
analogue of CLIP's zero-shot text heads). Prints the per-task table and, as its
last line, JSON {"average": ..., "<task>": ..., ...} (fractions; the average is
the unweighted mean over tasks, as in the merging papers).
Exit 0; 66 when the pool or the checkpoint is missing, 65 when it is malformed.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_vision import CLIPVision, load_checkpoint, load_config  # noqa: E402


class Pool:
    """The evaluation side of a pool: config, heads and the eval splits (loaded once)."""

    def __init__(self, pool_dir, tasks=None):
        import h5py
        self.dir = pool_dir
        self.cfg = load_config(pool_dir)
        with open(os.path.join(pool_dir, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.tasks = list(tasks) if tasks else list(self.manifest["tasks"])
        self.heads, self.data = {}, {}
        with h5py.File(os.path.join(pool_dir, "heads.h5"), "r") as h, \
                h5py.File(os.path.join(pool_dir, "eval.h5"), "r") as e:
            for t in self.tasks:
                self.heads[t] = np.asarray(h[t][()], dtype=np.float64)
                self.data[t] = {
                    "test": (e[t]["images"][()], e[t]["labels"][()]),
                    "val": (e[t]["val_images"][()], e[t]["val_labels"][()]),
                }

    def model(self, checkpoint, dtype=np.float32):
        tensors = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        return CLIPVision(self.cfg, tensors, dtype)

    def accuracy(self, checkpoint, split="test", tasks=None, dtype=np.float32):
        """{"average": a, task: a_t, ...}: fractions of correct argmax predictions."""
        m = self.model(checkpoint, dtype)
        out = {}
        for t in tasks or self.tasks:
            x, y = self.data[t][split]
            logits = m.features(x).astype(np.float64) @ self.heads[t].T
            out[t] = float(np.mean(np.argmax(logits, axis=1) == y))
        out = {"average": float(np.mean([out[t] for t in (tasks or self.tasks)])), **out}
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool")
    ap.add_argument("checkpoint")
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--tasks", help="comma-separated subset of the pool's tasks")
    ap.add_argument("--float64", action="store_true", help="compute the forward pass in float64")
    a = ap.parse_args()
    for p in (os.path.join(a.pool, "manifest.json"), a.checkpoint):
        if not os.path.exists(p):
            print(f"accuracy.py: {p}: no such file or directory", file=sys.stderr)
            return 66
    try:
        pool = Pool(a.pool, a.tasks.split(",") if a.tasks else None)
        acc = pool.accuracy(a.checkpoint, a.split, dtype=np.float64 if a.float64 else np.float32)
    except (KeyError, ValueError, OSError) as ex:
        print(f"accuracy.py: {a.checkpoint}: {ex}", file=sys.stderr)
        return 65
    for t in pool.tasks:
        print(f"{t:20s} {100 * acc[t]:6.2f} %")
    print(f"{'average':20s} {100 * acc['average']:6.2f} %  ({a.split} split)")
    print(json.dumps(acc))
    return 0


if __name__ == "__main__":
    sys.exit(main())

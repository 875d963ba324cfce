#!/usr/bin/env python3
"""compare.py A.safetensors B.safetensors TOL: every tensor of A equals B's to
TOL relative (Frobenius); names, shapes and dtypes identical. Exit 0 or 1."""
import sys

import numpy as np

from merge_ref import load

a, _ = load(sys.argv[1])
b, _ = load(sys.argv[2])
tol = float(sys.argv[3])
ok = sorted(a) == sorted(b)
worst = 0.0
for k in sorted(a):
    if k not in b or a[k][0] != b[k][0] or a[k][1].shape != b[k][1].shape:
        print(f"{k}: differs in name, dtype or shape")
        ok = False
        continue
    x, y = a[k][1].astype(np.float64), b[k][1].astype(np.float64)
    d = np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-300)
    worst = max(worst, d)
    if d > tol:
        print(f"{k}: relative difference {d:.3e} > {tol:g}")
        ok = False
print(f"compare {sys.argv[1]} {sys.argv[2]}: worst {worst:.3e}: {'OK' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)

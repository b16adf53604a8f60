#!/usr/bin/python3
"""numpy_tensor_reference.py - NumPy results for the tensor core, the
fixtures in spec/fixtures/numpy/ that spec/numpy_spec.lua compares against.

Inputs are float32 arrays from a seeded generator; every expected result is
computed by NumPy (products and reductions in float64, then rounded to
float32; element-wise operations in float32, as the library does them).
The spec runs the same operations through adcorre, including on transposed,
narrowed, selected and expanded views, and checks: the 512 x 300 by 300 x 200
product within 1e-4 relative, element-wise results exactly (+ - * /,
comparisons, copies of views) or within a few float32 ulps (exp, log, sqrt,
pow), reductions within float32 rounding of their sums.

Usage:
    /usr/bin/python3 tools/numpy_tensor_reference.py [--out spec/fixtures/numpy]
"""
import argparse
import os
import tempfile

import numpy as np


def save(out, name, arr):
    """Writes NAME.npy atomically (temporary name, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, os.path.join(out, name + ".npy"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="spec/fixtures/numpy")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(20261129)
    f32 = np.float32

    A = rng.standard_normal((512, 300)).astype(f32)
    B = rng.standard_normal((300, 200)).astype(f32)
    X = rng.standard_normal((4, 1, 5)).astype(f32)
    Y = rng.standard_normal((3, 1)).astype(f32)
    P = (rng.random((4, 3, 5)) + 0.5).astype(f32)
    R = rng.standard_normal((6, 7, 8)).astype(f32)
    inputs = {"A": A, "B": B, "X": X, "Y": Y, "P": P, "R": R}
    for k, v in inputs.items():
        save(args.out, "in_" + k, v)

    d = lambda a: a.astype(np.float64)
    out = {}
    # products (float64, rounded once)
    out["mm"] = (d(A) @ d(B)).astype(f32)
    out["mm_narrow"] = (d(A[:, :100]) @ d(B[:100, :])).astype(f32)
    # broadcasting, element-wise in float32
    out["add"] = X + Y
    out["sub"] = X - Y
    out["mul"] = X * Y
    out["div"] = X / P
    out["lt"] = (X < Y).astype(np.uint8)
    out["pow"] = np.power(P, f32(1.7)).astype(f32)
    out["exp"] = np.exp(X).astype(f32)
    out["log"] = np.log(P).astype(f32)
    out["sqrt"] = np.sqrt(P).astype(f32)
    # reductions (float64, rounded once); indices 1-based as in adcorre
    out["sum_all"] = np.array([d(R).sum()], dtype=f32)
    out["sum_d2"] = d(R).sum(axis=1).astype(f32)
    out["mean_d3"] = d(R).mean(axis=2).astype(f32)
    out["max_d1"] = R.max(axis=0)
    out["max_d1_idx"] = (R.argmax(axis=0) + 1).astype(np.int64)
    out["min_d2"] = R.min(axis=1)
    out["min_d2_idx"] = (R.argmin(axis=1) + 1).astype(np.int64)
    out["argmax_d3"] = (R.argmax(axis=2) + 1).astype(np.int64)
    out["var_d2"] = d(R).var(axis=1, ddof=1).astype(f32)
    out["std_d1"] = d(R).std(axis=0, ddof=1).astype(f32)
    out["norm_d3"] = np.sqrt((d(R) ** 2).sum(axis=2)).astype(f32)
    # views that are not contiguous
    RT = R.transpose(2, 1, 0)                       # [8, 7, 6]
    out["permute"] = np.ascontiguousarray(RT)
    out["narrow"] = np.ascontiguousarray(R[:, 2:6, :])
    out["select"] = np.ascontiguousarray(R[:, :, 3])
    out["expand"] = np.ascontiguousarray(np.broadcast_to(Y, (3, 5)))
    out["views_mul_add"] = RT[1:4] * R[:3, :, :6] + f32(1)
    out["permute_sum_d2"] = d(RT).sum(axis=1).astype(f32)
    out["expand_sum_d2"] = d(np.broadcast_to(Y, (3, 5))).sum(axis=1).astype(f32)
    out["transpose_max_d2"] = R.transpose(0, 2, 1).max(axis=1)
    for k, v in out.items():
        save(args.out, "out_" + k, v)
    print("wrote %d inputs and %d results to %s" % (len(inputs), len(out), args.out))


if __name__ == "__main__":
    main()

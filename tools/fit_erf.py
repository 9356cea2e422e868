#!/usr/bin/env python3
"""Fits the polynomials of core/fast_math.cpp's float erf (Note [fast float transcendentals]).

    python3 tools/fit_erf.py      # needs numpy; prints the coefficients as C++ float literals

P:  erf(x) / x = P(x^2) on |x| <= 1, degree 6 in x^2.
R:  e^{a^2} erfc(a) = t R(t), t = 1 / (1 + a/2), on a in [0.5, 11.5], degree 9 in t.

Both minimise the maximum relative error on Chebyshev-spaced points with Lawson's
iteratively reweighted least squares; the reference is Python's double-precision math.erf /
math.erfc. The coefficients are then rounded to float, as the kernels use them.
"""
import math

import numpy as np


def lawson(basis, target, iterations=200):
    """Coefficients c minimising max |basis @ c / target - 1|, and that maximum."""
    weight = 1.0 / target
    u = np.full(len(target), 1.0 / len(target))
    for _ in range(iterations):
        s = weight * np.sqrt(u)
        c = np.linalg.lstsq(basis * s[:, None], target * s, rcond=None)[0]
        err = np.abs(weight * (basis @ c - target))
        u = u * err
        u /= u.sum()
    return c, err.max()


def chebyshev_points(lo, hi, n):
    return lo + (hi - lo) * (np.cos(np.linspace(0.0, np.pi, n)) * 0.5 + 0.5)


def fit_p(degree=6):
    x = chebyshev_points(1e-6, 1.0, 4000)
    target = np.array([math.erf(v) / v for v in x])
    return lawson(np.stack([(x * x) ** k for k in range(degree + 1)], 1), target)


def fit_r(degree=9, lo=0.5, hi=11.5):
    a = chebyshev_points(lo, hi, 8000)
    target = np.array([math.exp(v * v) * math.erfc(v) for v in a])
    t = 1.0 / (1.0 + 0.5 * a)
    return lawson(np.stack([t ** (k + 1) for k in range(degree + 1)], 1), target)


def main():
    for name, (c, err) in (("P (x^2 powers 0..6)", fit_p()), ("R (t powers 0..9)", fit_r())):
        print(f"{name}: max relative error {err:.2g}")
        print("  " + ", ".join(f"{np.float32(v):.9g}f" for v in c))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch reference for unroll's benchmarks: the same workloads, measured the same way.

Run with the interpreter that has torch (Debian's python3-torch lives in /usr/bin/python3),
OPENBLAS_CORETYPE=Cooperlake, and the same thread count as unroll:

    OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 bench/reference.py --threads 1 [--json]

Prints one line per measurement (or one JSON object per line with --json), with names
prefixed "torch_" matching the unroll bench's names.
"""
import argparse
import json
import time

import torch


def report(args, name, value, unit):
    if args.json:
        print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}))
    else:
        print(f"{name:<42} {value:>10.1f} {unit}")


def small_op_chain(n, reps):
    """A chain of n ops alternating add and mul on [1,16], forward and backward timed apart."""
    x = torch.full((1, 16), 0.5, requires_grad=True)
    c = torch.full((1, 16), 0.999)
    best_f = best_b = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        y = x
        for _ in range(n // 2):
            y = (y + c) * c
        loss = y.sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        x.grad = None
        best_f = min(best_f, (t1 - t0) * 1e9 / n)
        best_b = min(best_b, (t2 - t1) * 1e9 / n)
    return best_f, best_b


def sgemm(m, n, k, trans_b, min_seconds=0.2):
    a = torch.randn(m, k)
    b = torch.randn(n, k) if trans_b else torch.randn(k, n)
    best = float("inf")
    for _ in range(3):
        iters, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b.t() if trans_b else b)
            iters += 1
            elapsed = time.perf_counter() - start
            if elapsed > min_seconds:
                break
        best = min(best, elapsed / iters)
    return 2.0 * m * n * k / best / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--workload", choices=["all", "small_op", "gemm"], default="all")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.workload in ("all", "small_op"):
        small_op_chain(1000, 5)
        f, b = small_op_chain(1000, args.reps)
        report(args, "torch_small_op_forward_1x16", f, "ns/op")
        report(args, "torch_small_op_backward_1x16", b, "ns/op")
        report(args, "torch_small_op_forward_plus_backward_1x16", f + b, "ns/op")
    if args.workload in ("all", "gemm"):
        for n in (64, 128, 256, 512, 1024):
            report(args, f"torch_sgemm_{n}x{n}x{n}", sgemm(n, n, n, False), "GFLOP/s")
        for m in (1, 32, 64):
            for k in (256, 512):
                report(args, f"torch_sgemm_nt_{m}x1024x{k}", sgemm(m, 1024, k, True), "GFLOP/s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch side of tests/test_torch_functional.cpp (optional: used only where torch imports).

  torch_functional.py IN OUT   reads the inputs unroll wrote to the safetensors file IN,
                               runs torch.autograd.functional (jacobian, vjp, jvp on
                               two_input; hessian, hvp on scalar_fn) and writes the results
                               to OUT, float64

The two functions are written the same way in the C++ test.
"""
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import read_safetensors, write_safetensors  # noqa: E402


def two_input(x, w):
    return torch.tanh(x @ w) * torch.sigmoid(x.sum())


def scalar_fn(a, b):
    return (torch.exp(a * 0.5) * b ** 2).sum() + torch.log(b * b + 1).sum() + torch.tanh(a @ a.T).sum()


def main(src, dst):
    arrays, _ = read_safetensors(src)
    t = {k: torch.tensor(np.array(v), dtype=torch.float64) for k, v in arrays.items()}
    F = torch.autograd.functional
    out = {}
    xw = (t["x"], t["w"])
    out["jacobian.0"], out["jacobian.1"] = F.jacobian(two_input, xw)
    _, (out["vjp.0"], out["vjp.1"]) = F.vjp(two_input, xw, t["v_out"])
    _, out["jvp"] = F.jvp(two_input, xw, (t["v_x"], t["v_w"]))
    ab = (t["a"], t["b"])
    H = F.hessian(scalar_fn, ab)
    for i in range(2):
        for j in range(2):
            out[f"hessian.{i}.{j}"] = H[i][j]
    _, (out["hvp.0"], out["hvp.1"]) = F.hvp(scalar_fn, ab, (t["v_a"], t["v_b"]))
    write_safetensors(dst, {k: v.detach().numpy().astype(np.float64) for k, v in out.items()})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

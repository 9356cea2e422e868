#!/usr/bin/env python3
"""PyTorch side of tests/test_torch_interop.cpp (optional: used only where torch imports).

  export PATH   writes torch.nn.RNN/LSTM/GRU weights, an input, lengths, the outputs,
                final states and the gradients of a fixed loss to a safetensors file
  check PATH    reads a safetensors file written by unroll (weights, input, lengths and
                unroll's outputs), loads the weights into torch modules with
                load_state_dict(strict=True) and exits 0 iff torch computes the same outputs

The safetensors format is read and written by tests/torch_common.py with the standard
library and numpy, so no extra package is needed.
"""
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import read_safetensors, write_safetensors  # noqa: E402

KINDS = {
    "rnn_tanh": lambda: torch.nn.RNN(3, 4, num_layers=2, bidirectional=True, nonlinearity="tanh"),
    "rnn_relu": lambda: torch.nn.RNN(3, 4, num_layers=2, bidirectional=True, nonlinearity="relu"),
    "lstm": lambda: torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True),
    "gru": lambda: torch.nn.GRU(3, 4, num_layers=2, bidirectional=True),
}
T, B = 5, 3
LENGTHS = [5, 2, 4]


def run(module, x, lengths):
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, state = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
    return out, state


def export(path):
    torch.manual_seed(0)
    tensors = {}
    for kind, make in KINDS.items():
        module = make().double()
        x = torch.randn(T, B, 3, dtype=torch.float64)
        out, state = run(module, x, torch.tensor(LENGTHS))
        h_n = state[0] if kind == "lstm" else state
        w_out = torch.randn_like(out)
        w_h = torch.randn_like(h_n)
        loss = (out * w_out).sum() + (h_n * w_h).sum()
        if kind == "lstm":
            w_c = torch.randn_like(state[1])
            loss = loss + (state[1] * w_c).sum()
            tensors[f"{kind}.c_n"] = state[1].detach().numpy()
            tensors[f"{kind}.w_c"] = w_c.numpy()
        loss.backward()
        for name, p in module.named_parameters():
            tensors[f"{kind}.{name}"] = p.detach().numpy()
            tensors[f"{kind}.grad.{name}"] = p.grad.numpy()
        tensors[f"{kind}.input"] = x.numpy()
        tensors[f"{kind}.lengths"] = np.array(LENGTHS, dtype=np.int64)
        tensors[f"{kind}.output"] = out.detach().numpy()
        tensors[f"{kind}.h_n"] = h_n.detach().numpy()
        tensors[f"{kind}.w_out"] = w_out.numpy()
        tensors[f"{kind}.w_h"] = w_h.numpy()
    write_safetensors(path, tensors)


def check(path):
    tensors, _ = read_safetensors(path)
    worst = 0.0
    for kind, make in KINDS.items():
        module = make().double()
        prefix = kind + ".param."
        state = {k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(state, strict=True)
        x = torch.from_numpy(tensors[f"{kind}.input"].copy())
        lengths = torch.from_numpy(tensors[f"{kind}.lengths"].copy())
        with torch.no_grad():
            out, _ = run(module, x, lengths)
        diff = float((out - torch.from_numpy(tensors[f"{kind}.output"].copy())).abs().max())
        print(f"{kind}: max |torch - unroll| output difference {diff:.3e}")
        worst = max(worst, diff)
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "export":
        export(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2]))

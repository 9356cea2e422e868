#!/usr/bin/env python3
"""PyTorch side of tests/test_torch_conv.cpp (optional: used only where torch imports).

  run IN OUT   IN is a safetensors file written by unroll: for each case <c> listed in its
               metadata (value: "kind=conv2d;in=4;out=6;k=3,2;stride=2,1;...", the layer's
               configuration), the weights <c>.param.<name>, the input <c>.input and the loss
               weights <c>.w_out. The weights are loaded into torch.nn.Conv1d / Conv2d (or a
               small TCN written below with torch.nn layers) with load_state_dict(strict=True);
               OUT receives torch's output <c>.output and the gradients of
               loss = sum(output * w_out): <c>.grad.<param name> and <c>.grad.input.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import read_safetensors, write_safetensors  # noqa: E402


def ints(text):
    values = tuple(int(v) for v in text.split(","))
    return values[0] if len(values) == 1 else values


class TemporalBlock(torch.nn.Module):
    """Bai et al.'s residual block as unroll's nn/tcn.h builds it (no weight norm)."""

    def __init__(self, cin, cout, k, dilation):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(cin, cout, k, dilation=dilation)
        self.conv2 = torch.nn.Conv1d(cout, cout, k, dilation=dilation)
        self.downsample = torch.nn.Conv1d(cin, cout, 1) if cin != cout else None
        self.left = (k - 1) * dilation

    def forward(self, x):
        h = torch.relu(self.conv1(F.pad(x, (self.left, 0))))
        h = torch.relu(self.conv2(F.pad(h, (self.left, 0))))
        return torch.relu(h + (x if self.downsample is None else self.downsample(x)))


class TCN(torch.nn.Module):
    def __init__(self, cin, channels, k):
        super().__init__()
        blocks, prev = [], cin
        for i, c in enumerate(channels):
            blocks.append(TemporalBlock(prev, c, k, 2 ** i))
            prev = c
        self.blocks = torch.nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def make_module(cfg):
    kind = cfg["kind"]
    if kind == "tcn":
        return TCN(int(cfg["in"]), [int(c) for c in cfg["channels"].split(",")], int(cfg["k"]))
    if kind in ("conv1d", "conv2d"):
        cls = torch.nn.Conv1d if kind == "conv1d" else torch.nn.Conv2d
        return cls(int(cfg["in"]), int(cfg["out"]), ints(cfg["k"]), stride=ints(cfg["stride"]),
                   padding=ints(cfg["padding"]), dilation=ints(cfg["dilation"]), groups=int(cfg["groups"]),
                   bias=cfg["bias"] == "1")
    pools = {"maxpool1d": torch.nn.MaxPool1d, "maxpool2d": torch.nn.MaxPool2d,
             "avgpool1d": torch.nn.AvgPool1d, "avgpool2d": torch.nn.AvgPool2d}
    if kind in pools:
        return pools[kind](ints(cfg["k"]), stride=ints(cfg["stride"]), padding=ints(cfg["padding"]))
    if kind == "adaptive2d":
        return torch.nn.AdaptiveAvgPool2d(ints(cfg["out"]))
    raise ValueError(f"unknown kind {kind}")


def run_case(name, cfg, tensors, out):
    module = make_module(cfg)
    prefix = name + ".param."
    state = {k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith(prefix)}
    x = torch.from_numpy(tensors[name + ".input"].copy()).requires_grad_(True)
    module = module.to(x.dtype)
    module.load_state_dict(state, strict=True)
    output = module(x)
    (output * torch.from_numpy(tensors[name + ".w_out"].copy())).sum().backward()
    out[name + ".output"] = output.detach().numpy()
    out[name + ".grad.input"] = x.grad.numpy()
    for pname, p in module.named_parameters():
        out[name + ".grad." + pname] = p.grad.numpy()


def run(in_path, out_path):
    tensors, metadata = read_safetensors(in_path)
    out = {}
    for name, text in metadata.items():
        run_case(name, dict(item.split("=", 1) for item in text.split(";")), tensors, out)
        print(f"{name}: ran torch.nn ({text})")
    write_safetensors(out_path, out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "run":
        sys.exit(__doc__)
    sys.exit(run(sys.argv[2], sys.argv[3]))

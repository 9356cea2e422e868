#!/usr/bin/env python3
"""PyTorch side of tests/test_torch_transformer.cpp (optional: used only where torch imports).

  run IN OUT   IN is a safetensors file written by unroll: for each case <c> listed in its
               metadata (value: "kind=mha;E=8;heads=2;...", the module's configuration), the
               weights <c>.param.<name>, the inputs <c>.query / <c>.key / <c>.value (or
               <c>.src), the masks <c>.kpm and <c>.attn_mask (int64 masks are booleans,
               nonzero = not allowed; floating masks are added) and loss weights <c>.w_out
               (and <c>.w_weights). The weights are loaded into torch.nn.MultiheadAttention /
               TransformerEncoderLayer / TransformerEncoder with load_state_dict(strict=True);
               OUT receives torch's outputs <c>.output (and per-head weights <c>.weights) and
               the gradients of loss = sum(output * w_out) [+ sum(weights * w_weights)]:
               <c>.grad.<param name> and <c>.grad.input.

The modules run in training mode with dropout 0, so that torch takes its plain (not the
fused "fast path") implementation, which is the same math. The safetensors format is read
and written by tests/torch_common.py with the standard library and numpy, so no extra
package is needed.
"""
import os
import sys

import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import read_safetensors, write_safetensors  # noqa: E402


def make_module(cfg):
    E, heads, bf = int(cfg["E"]), int(cfg["heads"]), cfg["batch_first"] == "1"
    if cfg["kind"] == "mha":
        return torch.nn.MultiheadAttention(E, heads, dropout=0.0, bias=True, batch_first=bf)

    def layer():
        return torch.nn.TransformerEncoderLayer(E, heads, dim_feedforward=int(cfg["F"]), dropout=0.0,
                                                activation=cfg["activation"], batch_first=bf,
                                                norm_first=cfg["norm_first"] == "1")
    if cfg["kind"] == "layer":
        return layer()
    norm = torch.nn.LayerNorm(E) if cfg["final_norm"] == "1" else None
    return torch.nn.TransformerEncoder(layer(), int(cfg["layers"]), norm=norm)


def mask(tensors, key):
    if key not in tensors:
        return None
    m = torch.from_numpy(tensors[key].copy())
    return m != 0 if m.dtype == torch.int64 else m


def run_case(name, cfg, tensors, out):
    module = make_module(cfg)
    prefix = name + ".param."
    state = {k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith(prefix)}
    dtype = next(iter(state.values())).dtype
    module = module.to(dtype)
    module.load_state_dict(state, strict=True)
    module.train()  # dropout is 0: the plain implementation, not the fused fast path

    def leaf(key):
        return torch.from_numpy(tensors[key].copy()).requires_grad_(True)

    kpm, attn_mask = mask(tensors, name + ".kpm"), mask(tensors, name + ".attn_mask")
    w_out = torch.from_numpy(tensors[name + ".w_out"].copy())
    if cfg["kind"] == "mha":
        x = leaf(name + ".query")
        key = x if cfg["self"] == "1" else leaf(name + ".key")
        value = x if cfg["self"] == "1" else leaf(name + ".value")
        output, weights = module(x, key, value, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
                                 average_attn_weights=False)
        loss = (output * w_out).sum() + (weights * torch.from_numpy(tensors[name + ".w_weights"].copy())).sum()
        out[name + ".weights"] = weights.detach().numpy()
    else:
        x = leaf(name + ".src")
        output = module(x, attn_mask, kpm) if cfg["kind"] == "layer" else module(x, mask=attn_mask,
                                                                                src_key_padding_mask=kpm)
        loss = (output * w_out).sum()
    loss.backward()
    out[name + ".output"] = output.detach().numpy()
    out[name + ".grad.input"] = x.grad.numpy()
    for pname, p in module.named_parameters():
        out[name + ".grad." + pname] = p.grad.numpy()


def run(in_path, out_path):
    tensors, metadata = read_safetensors(in_path)
    out = {}
    for name, text in metadata.items():
        cfg = dict(item.split("=", 1) for item in text.split(";"))
        run_case(name, cfg, tensors, out)
        print(f"{name}: ran torch.nn {cfg['kind']} ({text})")
    write_safetensors(out_path, out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "run":
        sys.exit(__doc__)
    sys.exit(run(sys.argv[2], sys.argv[3]))

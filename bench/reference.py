#!/usr/bin/env python3
"""PyTorch reference for unroll's benchmarks: the same workloads, measured the same way.

Run with the interpreter that has torch (Debian's python3-torch lives in /usr/bin/python3),
OPENBLAS_CORETYPE=Cooperlake, and the same thread count as unroll:

    OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 bench/reference.py --threads 1 [--json]

Prints one line per measurement (or one JSON object per line with --json), with names
prefixed "torch_" matching the unroll bench's names.

Recurrent workloads (bench/bench_rnn.cpp's, same names with the "torch_" prefix): one train
step is forward, cross-entropy, backward, clip_grad_norm_(1.0) and Adam, with nn.LSTM /
nn.GRU / nn.RNN (PyTorch's fused C++ recurrent path) and pack_padded_sequence for the word LM.

Sampling workload `sample` (bench/bench_sample.cpp's): tokens/s of autoregressive sampling
from the char-LM LSTM at B=1 under torch.no_grad (nn.LSTM step by step, torch.multinomial).

Transformer workload (bench/bench_transformer.cpp's, `--workload transformer`): one train step
of the transformer example's char LM (torch.nn.TransformerEncoder with a causal mask,
configured as unroll's TransformerLM) and of an nn.LSTM LM of the same width.

Convolution workloads (bench/bench_conv.cpp's): forward and backward of one conv1d / conv2d /
max_pool2d with a fixed upstream gradient, and of an 8-level TCN.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


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


class LanguageModel(nn.Module):
    """Embedding -> one recurrent layer -> Linear (the model of every recurrent workload)."""

    def __init__(self, kind, V, E, H):
        super().__init__()
        self.emb = nn.Embedding(V, E)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](E, H)
        self.head = nn.Linear(H, V)

    def forward(self, idx, lengths=None):  # idx [T,B] -> logits [T*B,V]
        x = self.emb(idx)
        if lengths is None:
            h, _ = self.rnn(x)
        else:
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.rnn(packed)[0], total_length=idx.shape[0])
        return self.head(h.reshape(-1, h.shape[2]))


def train_step(model, opt, idx, targets, lengths=None):
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(idx, lengths), targets, ignore_index=-100)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def charlm_ms(kind, B, H, T, steps):
    torch.manual_seed(0)
    model = LanguageModel(kind, 65, 64, H)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    idx = torch.randint(0, 65, (T, B))
    targets = torch.randint(0, 65, (T * B,))
    train_step(model, opt, idx, targets)
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step(model, opt, idx, targets)
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def load_corpus(path):
    """One sentence per non-empty line, or the generated corpus of bench_rnn.cpp."""
    if path:
        with open(path) as f:
            return [line.split() for line in f if line.split()]
    x, out, mask = 12345, [], (1 << 64) - 1

    def nxt():
        nonlocal x
        x = (x * 6364136223846793005 + 1442695040888963407) & mask
        return x >> 33

    for _ in range(2000):
        n = 5 + nxt() % 36
        out.append(["w" + str(nxt() % 5000) for _ in range(n)])
    return out


def prepare_words(corpus):
    ids = {"<s>": 0, "</s>": 1}
    sents = []
    for s in corpus:
        v = [0]
        for w in s:
            if w not in ids:
                ids[w] = len(ids)
            v.append(ids[w])
        v.append(1)
        sents.append(v)
    sents.sort(key=len)  # stable, like std::stable_sort
    return sents, len(ids)


def word_batch(sents, mb, i, count):
    n_batches = len(sents) // mb
    first = (i * n_batches // count) * mb
    batch = sents[first:first + mb]
    T = max(len(s) for s in batch) - 1
    idx = torch.ones(T, mb, dtype=torch.long)
    tg = torch.full((T, mb), -100, dtype=torch.long)
    lengths = []
    for b, s in enumerate(batch):
        n = len(s) - 1
        idx[:n, b] = torch.tensor(s[:n])
        tg[:n, b] = torch.tensor(s[1:])
        lengths.append(n)
    return idx, tg.reshape(-1), lengths, sum(lengths)


def wordlm_words_per_s(sents, vocab, mb, count):
    torch.manual_seed(0)
    model = LanguageModel("lstm", vocab, 128, 256)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    idx, tg, lengths, _ = word_batch(sents, mb, 0, count)
    train_step(model, opt, idx, tg, lengths)
    words, secs = 0, 0.0
    for i in range(count):
        idx, tg, lengths, n = word_batch(sents, mb, i, count)
        words += n
        t0 = time.perf_counter()
        train_step(model, opt, idx, tg, lengths)
        secs += time.perf_counter() - t0
    return words / secs


CONVS = [  # name, B, C_in, C_out, k, dilation, T (conv1d) or H=W (conv2d): bench/bench_conv.cpp's list
    ("conv1d_b32_c32_t200_k3_d1", 32, 32, 32, 3, 1, 200, 0),
    ("conv1d_b32_c64_t200_k3_d4", 32, 64, 64, 3, 4, 200, 0),
    ("conv1d_b32_c64_t600_k3_d1", 32, 64, 64, 3, 1, 600, 0),
    ("conv1d_b32_c32_t600_k7_d8", 32, 32, 32, 7, 8, 600, 0),
    ("conv1d_b32_c64_t600_k7_d32", 32, 64, 64, 7, 32, 600, 0),
    ("conv2d_b64_1to16_8x8_k3", 64, 1, 16, 3, 1, 0, 8),
    ("conv2d_b64_16to32_8x8_k3", 64, 16, 32, 3, 1, 0, 8),
    ("conv2d_b64_1to16_28x28_k3", 64, 1, 16, 3, 1, 0, 28),
    ("conv2d_b64_16to32_14x14_k3", 64, 16, 32, 3, 1, 0, 14),
    ("conv2d_b64_16to32_28x28_k3", 64, 16, 32, 3, 1, 0, 28),
]


def best_ms(reps, run):
    run()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def conv_ms(B, cin, cout, k, dilation, T, HW, reps):
    """y = conv(x, w, b); y.backward(g), as bench_conv: conv1d inputs pre-padded on the left."""
    if T:
        x = torch.randn(B, cin, T + (k - 1) * dilation, requires_grad=True)
        w = (torch.randn(cout, cin, k) * 0.1).requires_grad_(True)
        fwd = lambda: torch.nn.functional.conv1d(x, w, b, dilation=dilation)
    else:
        x = torch.randn(B, cin, HW, HW, requires_grad=True)
        w = (torch.randn(cout, cin, k, k) * 0.1).requires_grad_(True)
        fwd = lambda: torch.nn.functional.conv2d(x, w, b, padding=k // 2)
    b = torch.randn(cout, requires_grad=True)
    g = torch.randn(fwd().shape)

    def run():
        x.grad = w.grad = b.grad = None
        fwd().backward(g)
    return best_ms(reps, run)


class TemporalBlock(nn.Module):
    """Bai et al.'s residual block as unroll's nn/tcn.h builds it (no weight norm)."""

    def __init__(self, cin, cout, k, dilation):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, k, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, k, dilation=dilation)
        self.downsample = nn.Conv1d(cin, cout, 1) if cin != cout else None
        self.left = (k - 1) * dilation

    def forward(self, x):
        pad = torch.nn.functional.pad
        h = torch.relu(self.conv1(pad(x, (self.left, 0))))
        h = torch.relu(self.conv2(pad(h, (self.left, 0))))
        return torch.relu(h + (x if self.downsample is None else self.downsample(x)))


def convolutional(args):
    sel = lambda name: args.workload in ("all", "conv") or name.startswith(args.workload)
    reps = 3 if args.quick else 20
    for name, *shape in CONVS:
        if sel(name):
            report(args, "torch_" + name, conv_ms(*shape, reps), "ms")
    if sel("maxpool2d_b64_c16_28x28_k2"):
        x = torch.randn(64, 16, 28, 28, requires_grad=True)
        g = torch.randn(64, 16, 14, 14)

        def run():
            x.grad = None
            torch.nn.functional.max_pool2d(x, 2).backward(g)
        report(args, "torch_maxpool2d_b64_c16_28x28_k2", best_ms(reps, run), "ms")
    if sel("tcn_b32_c32_t600_k7_l8"):
        tcn = nn.Sequential(*[TemporalBlock(1 if i == 0 else 32, 32, 7, 2 ** i) for i in range(8)])
        x = torch.randn(32, 1, 600, requires_grad=True)
        g = torch.randn(32, 32, 600)

        def run():
            tcn.zero_grad(set_to_none=True)
            tcn(x).backward(g)
        report(args, "torch_tcn_b32_c32_t600_k7_l8", best_ms(2 if args.quick else 5, run), "ms")


def sample_tokens_per_s(V, E, H, tokens):
    """Tokens/s of autoregressive sampling at B=1, no grad: embed one token, one nn.LSTM step
    with carried state, linear head, softmax, torch.multinomial with a seeded generator."""
    torch.manual_seed(0)
    emb, lstm, head = nn.Embedding(V, E), nn.LSTM(E, H), nn.Linear(H, V)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        state = None
        tok = torch.zeros(1, 1, dtype=torch.long)
        t0 = time.perf_counter()
        for _ in range(tokens):
            out, state = lstm(emb(tok), state)  # [1,1,H]
            probs = torch.softmax(head(out[0]), 1)  # [1,V]
            tok = torch.multinomial(probs, 1, generator=gen)  # [1,1]
        return tokens / (time.perf_counter() - t0)


def sample(args):
    tokens = 500 if args.quick else 2000
    for H in (64, 256):
        sample_tokens_per_s(65, 64, H, tokens // 10 + 1)
        best = max(sample_tokens_per_s(65, 64, H, tokens) for _ in range(3))
        report(args, f"torch_sample_lstm_b1_h{H}", best, "tokens/s")


def recurrent(args):
    steps = 2 if args.quick else 5
    sel = lambda name: args.workload in ("all", "rnn") or name.startswith(args.workload)
    for kind in ("lstm", "gru", "rnn"):
        name = f"charlm_{kind}_b32_h256"
        if sel(name):
            report(args, "torch_" + name, charlm_ms(kind, 32, 256, 64, steps), "ms/step")
    for kind in ("lstm", "gru", "rnn"):
        name = f"charlm_{kind}_b1_h64"
        if sel(name):
            report(args, "torch_" + name, charlm_ms(kind, 1, 64, 100, steps * 4), "ms/step")
    if any(sel(f"wordlm_mb{mb}") for mb in (64, 16, 1)):
        sents, vocab = prepare_words(load_corpus(args.text))
        for mb in (64, 16, 1):
            if not sel(f"wordlm_mb{mb}"):
                continue
            count = {64: 2 if args.quick else 6, 16: 4 if args.quick else 16, 1: 30 if args.quick else 150}[mb]
            report(args, f"torch_wordlm_mb{mb}", wordlm_words_per_s(sents, vocab, mb, count), "words/s")
    for T in (100, 1000, 10000):
        name = f"scaling_lstm_t{T}"
        if sel(name):
            report(args, "torch_" + name, charlm_ms("lstm", 8, 128, T, 1 if T >= 10000 or args.quick else 3), "ms/step")
    for t in (1, 2):
        name = f"threads_lstm_b32_h512_t{t}"
        if sel(name):
            torch.set_num_threads(t)
            report(args, "torch_" + name, charlm_ms("lstm", 32, 512, 64, steps), "ms/step")
            torch.set_num_threads(args.threads)


class TransformerLM(nn.Module):
    """unroll's nn::TransformerLM: token embedding + learned positions (N(0,1), like
    nn.Embedding) -> pre-norm TransformerEncoder (GELU, exact erf form; batch_first; d_ff
    256; dropout 0) with the causal mask and a final LayerNorm -> Linear head."""

    def __init__(self, V, E, heads, layers, ff, T):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.pos = nn.Parameter(torch.randn(T, E))
        layer = nn.TransformerEncoderLayer(E, heads, dim_feedforward=ff, dropout=0.0, activation="gelu",
                                           layer_norm_eps=1e-5, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(E), enable_nested_tensor=False)
        self.head = nn.Linear(E, V)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(T))

    def forward(self, idx):  # idx [B,T] -> logits [B,T,V]
        T = idx.shape[1]
        x = self.embedding(idx) + self.pos[:T]
        return self.head(self.encoder(x, mask=self.mask[:T, :T]))


def transformer(args):
    """bench_transformer's workload: the Transformer LM step and the LSTM LM of equal width."""
    V, E, B, T = 49, 64, 16, 64
    steps = 3 if args.quick else 10

    def best(model, opt, idx, targets):
        def step():
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(idx).reshape(-1, V), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        return best_ms(steps, step)

    torch.manual_seed(0)
    tf = TransformerLM(V, E, 4, 2, 256, T)
    tf_ms = best(tf, torch.optim.Adam(tf.parameters(), lr=5e-3), torch.randint(0, V, (B, T)),
                 torch.randint(0, V, (B * T,)))
    torch.manual_seed(0)
    lstm = LanguageModel("lstm", V, E, E)
    lstm_ms = best(lstm, torch.optim.Adam(lstm.parameters(), lr=3e-3), torch.randint(0, V, (T, B)),
                   torch.randint(0, V, (T * B,)))
    tf_name, lstm_name = f"transformer_lm_b{B}_t{T}", f"lstm_lm_h{E}_b{B}_t{T}"
    report(args, "torch_" + tf_name, tf_ms, "ms/step")
    report(args, f"torch_{tf_name}_tokens_per_s", B * T / tf_ms * 1e3, "tokens/s")
    report(args, "torch_" + lstm_name, lstm_ms, "ms/step")
    report(args, f"torch_{lstm_name}_tokens_per_s", B * T / lstm_ms * 1e3, "tokens/s")
    report(args, f"torch_transformer_over_lstm_b{B}_t{T}", tf_ms / lstm_ms, "x")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--workload", default="all",
                   help="all, small_op, gemm, rnn, conv, sample, transformer, or a prefix of a workload name")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--text", default="", help="word-LM corpus (one sentence per line)")
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
    if args.workload in ("all", "conv") or args.workload.startswith(("conv", "maxpool", "tcn")):
        convolutional(args)
    if args.workload in ("all", "sample") or args.workload.startswith("sample_"):
        sample(args)
    if args.workload in ("all", "transformer"):
        transformer(args)
    if args.workload not in ("small_op", "gemm", "conv", "sample", "transformer") and not args.workload.startswith(
            ("conv", "maxpool", "tcn", "sample")):
        recurrent(args)


if __name__ == "__main__":
    main()

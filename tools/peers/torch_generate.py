#!/usr/bin/env python3
"""Batched greedy generation with a static KV cache of an rlaif bench preset model in PyTorch:
the peer of `rlaif bench generate`.

For each --batch size, B random prompts of --prompt-len tokens each generate exactly
--new-tokens tokens (greedy, never stopping early). The figures follow
tools/bench_generate.cpp:
- prefill: from the start of the call until the first new token is picked (the cache's
  allocation, the prompt's forward pass and the first token's argmax);
- decode: the remaining new-tokens - 1 steps, one token per sequence each; decode tokens/s is
  B / (decode time per step);
- overall: B * new-tokens / total time (the first token counts as new).
The cache is preallocated per layer as [B, Hkv, prompt + new, Dh] and filled in place; the head
runs on the last position only. On cuda the model's weights are cast to bf16 (--dtype bf16, the
default there), as rlaif keeps bf16 parameters for generation; cpu runs f32.

The prompts are the first B rows of one random draw for the largest batch, so every batch size
generates from the same first prompt, and greedy decoding should give it the same tokens.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_model as pm  # noqa: E402


def new_cache(model, batch: int, capacity: int, dtype, device):
    p = model.p
    shape = (batch, p.kv_heads, capacity, p.head_dim)
    return [
        (
            torch.empty(shape, dtype=dtype, device=device),
            torch.empty(shape, dtype=dtype, device=device),
        )
        for _ in range(p.layers)
    ]


def generate(model, prompts, new_tokens: int, dtype, timer=None):
    """Greedy tokens [B, new_tokens] after prompts [B, P]. With a timer (started by the caller),
    also returns the mark taken once the first token is picked."""
    B, P = prompts.shape
    cache = new_cache(model, B, P + new_tokens, dtype, prompts.device)
    out = torch.empty(B, new_tokens, dtype=torch.long, device=prompts.device)
    h = model.hidden(prompts, cache, 0)
    out[:, 0] = model.logits(h[:, -1]).argmax(-1)
    first = timer.mark() if timer is not None else None
    for i in range(1, new_tokens):
        h = model.hidden(out[:, i - 1 : i], cache, P + i - 1)
        out[:, i] = model.logits(h[:, -1]).argmax(-1)
    return out, first


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=["gpt2", "llama"], default="llama")
    ap.add_argument("--preset", choices=["tiny", "124M", "350M", "1B"], default="tiny")
    ap.add_argument("--batch", default="1,16,64", help="comma-separated batch sizes")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    pm.add_common_args(
        ap, 3, 1, "timed runs per batch size (medians reported)", "untimed runs per batch size"
    )
    args = ap.parse_args()
    pm.apply_common_args(args)
    p = pm.PRESETS[(args.arch, args.preset)]
    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise SystemExit(
            f"--batch must be a comma-separated list of positive integers, not '{args.batch}'"
        )
    P, N = args.prompt_len, args.new_tokens
    if P < 1 or N < 1:
        raise SystemExit("--prompt-len and --new-tokens must be positive")
    if P + N > p.context:
        raise SystemExit(
            f"--prompt-len + --new-tokens = {P + N} exceeds the preset's context of {p.context}"
        )
    dev = args.device
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32

    model = pm.PresetModel(p).to(device=dev, dtype=dtype).eval()
    all_prompts = torch.randint(0, p.vocab, (max(batches), P)).to(dev)
    timer = pm.Timer(dev)

    rows = []
    with torch.inference_mode():
        for b in batches:
            prompts = all_prompts[:b].contiguous()
            for _ in range(args.warmup):
                generate(model, prompts, N, dtype)
            total, prefill, decode = [], [], []
            for _ in range(args.reps):
                timer.start()
                tokens, first = generate(model, prompts, N, dtype, timer)
                t = timer.stop()
                f = timer.since_start(first)
                total.append(t)
                prefill.append(f)
                decode.append(t - f)
            decode_step = pm.median(decode) / (N - 1) if N > 1 else None
            rows.append(
                {
                    "name": f"batch{b}",
                    "batch": b,
                    "prefill_ms": pm.median(prefill) * 1e3,
                    "decode_ms_per_step": None if decode_step is None else decode_step * 1e3,
                    "decode_tokens_per_s": None if decode_step is None else b / decode_step,
                    "tokens_per_s": b * N / pm.median(total),
                    "first_row_tokens": tokens[0, :16].tolist(),
                }
            )

    print(
        f"torch {torch.__version__} generate: {args.arch} {args.preset} "
        f"({pm.parameter_count(model) / 1e6:.2f}M parameters), {pm.device_name(dev)}, {args.dtype} weights, "
        f"prompt {P} + {N} new tokens, attention {pm.ATTENTION_PATH}"
    )
    table = []
    for r in rows:
        step = r["decode_ms_per_step"]
        rate = r["decode_tokens_per_s"]
        table.append(
            [
                r["batch"],
                f"{r['prefill_ms']:.2f}",
                "-" if step is None else f"{step:.3f}",
                "-" if rate is None else f"{rate:.1f}",
                f"{r['tokens_per_s']:.1f}",
            ]
        )
    pm.print_table(["batch", "prefill ms", "decode ms/step", "decode tok/s", "total tok/s"], table)
    pm.write_json(
        args.json,
        {
            **pm.run_info("generate", args),
            "arch": args.arch,
            "preset": args.preset,
            "params": pm.parameter_count(model),
            "prompt_len": P,
            "new_tokens": N,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""One DPO training step of an rlaif bench preset model in PyTorch: the peer of
`rlaif bench dpo`.

Each of --pairs pairs is a chosen and a rejected sequence of --seq random tokens sharing their
first --prompt tokens; the completion is the rest. Policy and reference start from the same
weights (the reference is a frozen copy). A step: the policy's forward over the 2*pairs rows
(chosen rows, then rejected) in one batch; the reference's log-probs, either by its own forward
under no_grad in the step ("live") or computed once before the timed steps ("precomputed");
summed log-probs of the completion tokens (token t predicted from position t-1);
loss = mean(-logsigmoid(beta*((pc - rc) - (pr - rr)))), beta 0.1; backward; global grad-norm
clip to 1.0; AdamW (lr 1e-6, no weight decay; fused on cuda where torch has it); zero_grad.

Like rlaif's token_logprobs, the head runs over every position and the completion's log-probs
are summed under a mask. bf16 on cuda means autocast with f32 weights; cpu runs f32.
"""

import argparse
import contextlib
import copy
import inspect
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_model as pm  # noqa: E402

BETA = 0.1
LR = 1e-6
# Rows of log-probs per chunk: the f32 logits of one chunk are all that exists at once outside
# autograd's saved tensors.
ROW_CHUNK = 4


def completion_logprobs(model, ids, prompt: int):
    """Summed log-probs [R] of ids[:, prompt:] under model, each token predicted by the position
    before it."""
    h = model.hidden(ids)
    targets = ids[:, 1:]
    mask = torch.zeros_like(targets, dtype=torch.float32)
    mask[:, prompt - 1 :] = 1.0  # target index t-1 holds token t; completions start at `prompt`
    sums = []
    for r in range(0, ids.shape[0], ROW_CHUNK):
        logits = model.logits(h[r : r + ROW_CHUNK, :-1])
        nll = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            targets[r : r + ROW_CHUNK].reshape(-1),
            reduction="none",
        )
        sums.append(-(nll.view(logits.shape[0], -1) * mask[r : r + ROW_CHUNK]).sum(-1))
    return torch.cat(sums)


def dpo_loss(policy_lp, ref_lp, pairs: int):
    pc, pr = policy_lp[:pairs], policy_lp[pairs:]
    rc, rr = ref_lp[:pairs], ref_lp[pairs:]
    return (-F.logsigmoid(BETA * ((pc - rc) - (pr - rr)))).mean()


def make_optimizer(model, device: str):
    kwargs = {"lr": LR, "weight_decay": 0.0}
    fused = device == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
    if fused:
        kwargs["fused"] = True
    return torch.optim.AdamW(model.parameters(), **kwargs), fused


def run_mode(args, mode: str, initial, ids, autocast):
    """Times one mode's steps; returns its row."""
    dev = args.device
    cuda = dev == "cuda"
    # Each mode starts from the same weights and a fresh optimizer.
    policy = copy.deepcopy(initial).to(dev)
    reference = copy.deepcopy(initial).to(dev).requires_grad_(False).eval()
    opt, fused = make_optimizer(policy, dev)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    precompute_s = None
    ref_cached = None
    if mode == "precomputed":
        t0 = time.perf_counter()
        with torch.no_grad(), autocast():
            ref_cached = completion_logprobs(reference, ids, args.prompt).float()
        if cuda:
            torch.cuda.synchronize()
        precompute_s = time.perf_counter() - t0
        reference = None  # a precomputed run keeps log-probs, not the reference model

    losses = []

    def step():
        with autocast():
            policy_lp = completion_logprobs(policy, ids, args.prompt)
            if ref_cached is None:
                with torch.no_grad():
                    ref_lp = completion_logprobs(reference, ids, args.prompt)
            else:
                ref_lp = ref_cached
            loss = dpo_loss(policy_lp.float(), ref_lp.float(), args.pairs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    timer = pm.Timer(dev)
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.reps):
        timer.start()
        step()
        times.append(timer.stop())
    t = pm.median(times)
    tokens = 2 * args.pairs * args.seq
    return {
        "name": f"dpo step ({mode} reference)",
        "mode": mode,
        "ms_per_step": t * 1e3,
        "steps_per_s": 1.0 / t,
        "pairs_per_s": args.pairs / t,
        "tokens_per_s": tokens / t,
        "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "precompute_s": precompute_s,
        "first_loss": losses[0].item(),
        "last_loss": losses[-1].item(),
        "fused_adamw": fused,
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=["gpt2", "llama"], default="gpt2")
    ap.add_argument("--preset", choices=["tiny", "124M", "350M", "1B"], default="tiny")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument(
        "--seq", type=int, default=512, help="tokens per sequence (prompt + completion)"
    )
    ap.add_argument(
        "--prompt", type=int, default=0, help="prompt tokens shared by a pair (0: half of --seq)"
    )
    ap.add_argument("--mode", default="live,precomputed", help="live, precomputed or both")
    pm.add_common_args(ap, 5, 2, "timed steps per mode", "untimed steps per mode")
    args = ap.parse_args()
    pm.apply_common_args(args)
    p = pm.PRESETS[(args.arch, args.preset)]
    if args.prompt == 0:
        args.prompt = args.seq // 2
    modes = [m for m in args.mode.split(",") if m]
    if not modes or any(m not in ("live", "precomputed") for m in modes):
        raise SystemExit("--mode must be live, precomputed or live,precomputed")
    if not (0 < args.prompt < args.seq <= p.context):
        raise SystemExit(f"need 0 < --prompt < --seq <= the preset's context {p.context}")
    if args.pairs < 1:
        raise SystemExit("--pairs must be positive")
    dev = args.device

    # Chosen rows then rejected rows; pair i's rows share their prompt.
    prompt = torch.randint(0, p.vocab, (args.pairs, args.prompt))
    completions = torch.randint(0, p.vocab, (2, args.pairs, args.seq - args.prompt))
    ids = torch.cat(
        [torch.cat([prompt, completions[0]], 1), torch.cat([prompt, completions[1]], 1)]
    ).to(dev)

    # The initial weights stay on the host, so the device holds only what a mode needs.
    initial = pm.PresetModel(p)

    def autocast():
        if args.dtype == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    rows = [run_mode(args, mode, initial, ids, autocast) for mode in modes]
    step0_loss = rows[0]["first_loss"]  # policy == reference at step 0: log 2

    print(
        f"torch {torch.__version__} DPO step: {args.arch} {args.preset} "
        f"({pm.parameter_count(initial) / 1e6:.2f}M parameters), {pm.device_name(dev)}, {args.dtype}, "
        f"{args.pairs} pairs x {args.seq} tokens (prompt {args.prompt}), attention {pm.ATTENTION_PATH}"
    )
    table = []
    for r in rows:
        peak = "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.0f}"
        pre = "-" if r["precompute_s"] is None else f"{r['precompute_s']:.3f}"
        table.append(
            [
                r["mode"],
                f"{r['ms_per_step']:.2f}",
                f"{r['steps_per_s']:.2f}",
                f"{r['pairs_per_s']:.1f}",
                f"{r['tokens_per_s']:.0f}",
                peak,
                pre,
            ]
        )
    pm.print_table(
        ["reference", "ms/step", "steps/s", "pairs/s", "tokens/s", "peak MiB", "precompute s"],
        table,
    )
    print(f"loss at step 0: {step0_loss:.6f} (log 2 = {math.log(2):.6f})")
    pm.write_json(
        args.json,
        {
            **pm.run_info("dpo", args),
            "arch": args.arch,
            "preset": args.preset,
            "params": pm.parameter_count(initial),
            "pairs": args.pairs,
            "seq": args.seq,
            "prompt": args.prompt,
            "beta": BETA,
            "lr": LR,
            "step0_loss": step0_loss,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()

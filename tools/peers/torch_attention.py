#!/usr/bin/env python3
"""PyTorch's causal attention, forward and forward+backward, over a grid of shapes: the peer of
`rlaif bench attention`.

Rows, with the flags and defaults of `rlaif bench attention`: every head size Dh of --head-dim
(64, 128) x every sequence length T of --seq (1024, 2048, 4096), with B = --tokens / T (8192
tokens a row), H = --width / Dh query heads (768 wide) and Hkv in {H, H / --groups} key/value
heads (3); q, k, v as [B, H, T, Dh]. On cuda the figures are bf16 through the flash backend of
scaled_dot_product_attention (the memory-efficient one where flash refuses a shape; each row says
which ran). FLOPs: forward 4*B*H*T*T*Dh/2 (the causal half), forward+backward 3.5 times that.

--small (the default on cpu) shrinks the default grid to T in {64, 128} with 256 tokens a row.
--check also runs the explicit softmax attention on every row's inputs and reports the largest
difference from SDPA.
"""

import argparse
import contextlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_model as pm  # noqa: E402


def backend_contexts():
    """(name, context factory) pairs to try in order on cuda: flash, then memory-efficient."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel  # torch 2.3 and later

        return [
            ("flash", lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)),
            ("efficient", lambda: sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION)),
        ]
    except ImportError:
        k = torch.backends.cuda.sdp_kernel  # torch 2.0 to 2.2
        return [
            ("flash", lambda: k(enable_flash=True, enable_math=False, enable_mem_efficient=False)),
            (
                "efficient",
                lambda: k(enable_flash=False, enable_math=False, enable_mem_efficient=True),
            ),
        ]


def make_call(groups: int, use_gqa: bool, math_path: bool):
    """The attention under test as f(q, k, v). Without native GQA the key/value heads are
    repeated inside the call, so their copy (and its backward) is part of what is timed."""
    F = torch.nn.functional

    def call(q, k, v):
        if groups > 1 and not use_gqa:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if math_path:
            return pm.math_attention(q, k, v, causal=True)
        if use_gqa:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    return call


def time_row(fn, timer, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        timer.start()
        fn()
        times.append(timer.stop())
    return pm.median(times)


def run_row(args, B, H, Hkv, T, Dh, dtype):
    dev = args.device
    q = torch.randn(B, H, T, Dh, device=dev, dtype=dtype)
    k = torch.randn(B, Hkv, T, Dh, device=dev, dtype=dtype)
    v = torch.randn(B, Hkv, T, Dh, device=dev, dtype=dtype)
    dout = torch.randn(B, H, T, Dh, device=dev, dtype=dtype)
    groups = H // Hkv
    timer = pm.Timer(dev)

    # The candidates in order; the first that runs this shape is timed.
    if not pm.HAS_SDPA:
        candidates = [("math", contextlib.nullcontext, False, True)]
    elif dev == "cuda":
        candidates = []
        for name, ctx in backend_contexts():
            if groups > 1 and pm.HAS_SDPA_GQA:
                candidates.append((name + "+gqa", ctx, True, False))
            candidates.append((name if groups == 1 else name + "+repeat", ctx, False, False))
    else:
        candidates = [("sdpa-cpu", contextlib.nullcontext, groups > 1 and pm.HAS_SDPA_GQA, False)]

    for backend, ctx, use_gqa, math_path in candidates:
        call = make_call(groups, use_gqa, math_path)
        try:
            with ctx():
                # One untimed call of each kind finds out whether this backend takes the shape.
                qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                out = call(qg, kg, vg)
                torch.autograd.grad(out, (qg, kg, vg), dout)
                del out

                def fwd():
                    with torch.no_grad():
                        call(q, k, v)

                def fwd_bwd():
                    o = call(qg, kg, vg)
                    # autograd.grad returns the gradients without accumulating into .grad.
                    torch.autograd.grad(o, (qg, kg, vg), dout)

                t_fwd = time_row(fwd, timer, args.warmup, args.reps)
                t_both = time_row(fwd_bwd, timer, args.warmup, args.reps)
        except RuntimeError as e:
            if dev == "cuda":
                torch.cuda.synchronize()
            last_error = e
            continue
        break
    else:
        raise SystemExit(f"no attention backend ran B={B} H={H} Hkv={Hkv} T={T}: {last_error}")

    check = None
    if args.check and pm.HAS_SDPA:
        with torch.no_grad():
            ref = make_call(groups, False, True)(q.float(), k.float(), v.float())
            got = make_call(groups, groups > 1 and pm.HAS_SDPA_GQA, False)(
                q.float(), k.float(), v.float()
            )
            check = (ref - got).abs().max().item()

    flops = 4.0 * B * H * T * T * Dh / 2.0
    rows = []
    for name, t, f in (("attention fwd", t_fwd, flops), ("attention fwd+bwd", t_both, 3.5 * flops)):
        rows.append(
            {
                "name": name,
                "B": B,
                "H": H,
                "Hkv": Hkv,
                "T": T,
                "Dh": Dh,
                "ms": t * 1e3,
                "tflops": f / t / 1e12,
                "backend": backend,
                "max_abs_diff_vs_math": check,
            }
        )
    return rows


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--small",
        action="store_true",
        default=None,
        help="T in {64, 128}, 256 tokens a row, unless --seq/--tokens say otherwise "
        "(default on cpu)",
    )
    ap.add_argument("--full", dest="small", action="store_false", help="the full grid even on cpu")
    ap.add_argument("--head-dim", "--dh", dest="dh", default="64,128", help="head sizes (Dh)")
    ap.add_argument("--seq", default=None, help="sequence lengths (T), comma-separated")
    ap.add_argument("--tokens", type=int, default=None, help="tokens a row: B = tokens / T")
    ap.add_argument("--width", type=int, default=768, help="H = width / Dh query heads")
    ap.add_argument("--groups", type=int, default=3, help="query heads per kv head (1: none)")
    ap.add_argument("--check", action="store_true", help="compare SDPA with the explicit softmax")
    pm.add_common_args(ap, 10, 3, "timed runs per row (medians reported)", "untimed runs per row")
    args = ap.parse_args()
    if args.small is None:
        args.small = args.device == "cpu"
    pm.apply_common_args(args)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32

    seqs = args.seq or ("64,128" if args.small else "1024,2048,4096")
    tokens = args.tokens or (256 if args.small else 8192)
    shapes = []
    for Dh in (int(x) for x in args.dh.split(",")):
        if args.width % Dh:
            raise SystemExit(f"--width {args.width} is not a multiple of --head-dim {Dh}")
        H = args.width // Dh
        for T in (int(x) for x in seqs.split(",")):
            if tokens % T:
                raise SystemExit(f"--tokens {tokens} is not a multiple of --seq {T}")
            for Hkv in (H, H // args.groups) if args.groups > 1 else (H,):
                if H % args.groups:
                    raise SystemExit(f"--groups {args.groups} does not divide {H} heads")
                shapes.append((tokens // T, H, Hkv, T, Dh))

    rows = []
    for B, H, Hkv, T, Dh in shapes:
        rows += run_row(args, B, H, Hkv, T, Dh, dtype)

    print(
        f"torch {torch.__version__} attention on {pm.device_name(args.device)}, {args.dtype}, causal"
    )
    table = []
    for r in rows:
        diff = r["max_abs_diff_vs_math"]
        table.append(
            [
                r["name"],
                r["B"],
                r["H"],
                r["Hkv"],
                r["T"],
                r["Dh"],
                f"{r['ms']:.3f}",
                f"{r['tflops']:.2f}",
                r["backend"],
            ]
            + ([] if not args.check else ["-" if diff is None else f"{diff:.2e}"])
        )
    pm.print_table(
        ["row", "B", "H", "Hkv", "T", "Dh", "ms", "TFLOP/s", "backend"]
        + (["vs math"] if args.check else []),
        table,
    )
    pm.write_json(
        args.json,
        {
            **pm.run_info("attention", args),
            "causal": True,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()

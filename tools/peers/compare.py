#!/usr/bin/env python3
"""The ratio table of tools/gpu_peers.sh: rlaif's figures over its peers', from one run's folder.

    python3 tools/peers/compare.py OUT_DIR

Reads what gpu_peers.sh left in OUT_DIR: rlaif_*.json (rlaif bench), peer_*.json (the PyTorch
peers), peers.log (llm.c's per-step lines) and *.mem (the device's peak used MiB while each
program ran). Every ratio is rlaif / peer, so above 1 means rlaif is faster (or, for memory,
uses more). A missing side prints "n/a" rather than a guess. Standard library only: the GPU
machine's python needs nothing else.
"""

import json
import os
import re
import statistics
import sys


def load(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def mem(folder, name):
    """The device's peak used memory (MiB) while program `name` ran, or None."""
    path = os.path.join(folder, name + ".mem")
    try:
        with open(path) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


def rows(doc):
    """The per-shape rows of a benchmark's JSON (rlaif's generate calls them results)."""
    if doc is None:
        return []
    return doc.get("rows") or doc.get("results") or []


def ratio(a, b):
    if a is None or b is None or not b:
        return "n/a"
    return f"{a / b:.2f}x"


def num(x, digits=1):
    return "n/a" if x is None else f"{x:.{digits}f}"


def llmc_step_ms(log_text):
    """Median ms per step of llm.c's run in the log, its first 3 steps left out as warm-up."""
    section = log_text.split("--- llmc_gpt2:", 1)
    if len(section) < 2:
        return None
    times = [
        float(m) for m in re.findall(r"^step\s+\d+/\d+ \|.*\| ([0-9.]+) ms \|", section[1], re.M)
    ]
    times = times[3:] if len(times) > 3 else times
    return statistics.median(times) if times else None


def main(folder):
    out = []

    def table(title, header, body):
        out.append(f"\n{title}")
        widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
        for r in [header] + body:
            out.append(
                "  ".join(
                    str(c).rjust(w) if i else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths))
                )
            )

    device = None
    for name in sorted(os.listdir(folder)):
        if name.startswith("rlaif_") and name.endswith(".json"):
            device = (load(folder, name) or {}).get("device_name") or device
    out.append(f"gpu_peers summary: {device or 'unknown device'}; ratios are rlaif / peer")

    # Training: GPT-2 124M beside llm.c; Llama 124M reported beside it.
    log_path = os.path.join(folder, "peers.log")
    log_text = open(log_path).read() if os.path.exists(log_path) else ""
    body = []
    gpt2 = load(folder, "rlaif_train_gpt2.json")
    llmc_ms = llmc_step_ms(log_text)
    llmc_tps = None
    if gpt2 and llmc_ms:
        llmc_tps = gpt2["batch"] * gpt2["seq"] / (llmc_ms / 1e3)
    for arch in ("gpt2", "llama"):
        doc = load(folder, f"rlaif_train_{arch}.json")
        if doc is None:
            continue
        peer = llmc_tps if arch == "gpt2" else None
        body.append(
            [
                f"{arch} {doc.get('preset', '')} B{doc['batch']} T{doc['seq']}",
                num(doc.get("tokens_per_s"), 0),
                num(doc.get("mfu", 0) * 100 if doc.get("mfu") is not None else None),
                num(peer, 0),
                ratio(doc.get("tokens_per_s"), peer),
                num(mem(folder, f"rlaif_train_{arch}"), 0),
                num(mem(folder, "llmc_gpt2"), 0) if arch == "gpt2" else "",
                ratio(mem(folder, f"rlaif_train_{arch}"), mem(folder, "llmc_gpt2"))
                if arch == "gpt2"
                else "",
            ]
        )
    if body:
        table(
            "train (tokens/s; llm.c's from its median ms/step)",
            [
                "model",
                "rlaif tok/s",
                "MFU %",
                "llm.c tok/s",
                "speed",
                "rlaif MiB",
                "llm.c MiB",
                "memory",
            ],
            body,
        )

    # Attention: rows matched by shape.
    mine = {
        (r["name"], r["B"], r["H"], r["Hkv"], r["T"], r["Dh"]): r
        for r in rows(load(folder, "rlaif_attention.json"))
    }
    theirs = {
        (r["name"], r["B"], r["H"], r["Hkv"], r["T"], r["Dh"]): r
        for r in rows(load(folder, "peer_attention.json"))
    }
    body = []
    for key in mine:
        r, p = mine[key], theirs.get(key)
        body.append(
            [
                key[0],
                f"{key[1]}x{key[2]}/{key[3]}x{key[4]}x{key[5]}",
                num(r["tflops"], 3),
                num(p["tflops"], 3) if p else "n/a",
                ratio(r["tflops"], p["tflops"] if p else None),
                p.get("backend", "") if p else "",
            ]
        )
    if body:
        table(
            "attention (TFLOP/s, causal)",
            ["pass", "B x H/Hkv x T x Dh", "rlaif", "SDPA", "speed", "SDPA backend"],
            body,
        )

    # DPO: steps/s per reference mode.
    body = []
    for arch in ("gpt2", "llama"):
        mine = {r["mode"]: r for r in rows(load(folder, f"rlaif_dpo_{arch}.json"))}
        theirs = {r["mode"]: r for r in rows(load(folder, f"peer_dpo_{arch}.json"))}
        for mode, r in mine.items():
            p = theirs.get(mode)
            body.append(
                [
                    f"{arch} {mode}",
                    num(r["steps_per_s"], 2),
                    num(p["steps_per_s"], 2) if p else "n/a",
                    ratio(r["steps_per_s"], p["steps_per_s"] if p else None),
                ]
            )
        if mine:
            body.append(
                [
                    f"{arch} device MiB",
                    num(mem(folder, f"rlaif_dpo_{arch}"), 0),
                    num(mem(folder, f"peer_dpo_{arch}"), 0),
                    ratio(mem(folder, f"rlaif_dpo_{arch}"), mem(folder, f"peer_dpo_{arch}")),
                ]
            )
    if body:
        table("dpo (steps/s; target 2x)", ["model, reference", "rlaif", "PyTorch", "speed"], body)

    # Generation: new tokens/s per batch size.
    body = []
    for arch in ("gpt2", "llama"):
        mine = {r["batch"]: r for r in rows(load(folder, f"rlaif_generate_{arch}.json"))}
        theirs = {r["batch"]: r for r in rows(load(folder, f"peer_generate_{arch}.json"))}
        for batch, r in sorted(mine.items()):
            p = theirs.get(batch)
            body.append(
                [
                    f"{arch} batch {batch}",
                    num(r["tokens_per_s"], 0),
                    num(p["tokens_per_s"], 0) if p else "n/a",
                    ratio(r["tokens_per_s"], p["tokens_per_s"] if p else None),
                ]
            )
    if body:
        table(
            "generate (new tokens/s; target 2x)",
            ["model, batch", "rlaif", "PyTorch", "speed"],
            body,
        )

    # PPO: the step's time split (no peer), the median over steps after the first.
    metrics = os.path.join(folder, "ppo", "run", "metrics.jsonl")
    steps = []
    if os.path.exists(metrics):
        with open(metrics) as f:
            steps = [json.loads(line) for line in f if '"kind":"train"' in line]
    later = steps[1:] if len(steps) > 1 else steps
    if later:
        parts = ["generate", "score", "evaluate", "update"]
        med = {p: statistics.median(s.get(f"time/{p}_s", 0.0) for s in later) for p in parts}
        total = sum(med.values())
        body = [
            [p, f"{med[p] * 1e3:.1f}", f"{100 * med[p] / total:.1f}%" if total else "n/a"]
            for p in parts
        ]
        body.append(["step", f"{total * 1e3:.1f}", "100%"])
        table(
            f"ppo step ({len(later)} steps, medians; rollout tokens/s "
            f"{statistics.median(s.get('rollout_tokens_per_s', 0.0) for s in later):.0f})",
            ["part", "ms", "share"],
            body,
        )

    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) == 2 else 2)
    main(sys.argv[1])

"""rlaif's bench preset models (tools/bench_presets.cpp) in plain torch.nn, plus the timing and
output helpers that torch_dpo_step.py and torch_generate.py share.

The architectures follow model/transformer.cpp:
- gpt2: learned positions, pre-LayerNorm (eps 1e-5, with bias), q/k/v/o with bias, MLP
  fc_in -> tanh GELU -> fc_out with bias, final LayerNorm.
- llama: RMSNorm (eps 1e-5), rotate-half RoPE with theta 10000 (kernels/cpu/cpu_rope.cpp),
  grouped-query attention, SwiGLU MLP down(silu(gate(h)) * up(h)), no biases, final RMSNorm.
Both tie the output head to the token embedding. q, k and v are separate projections, as rlaif
keeps them. Attention is scaled_dot_product_attention where torch has it (2.0 and later), and an
explicit softmax attention otherwise; ATTENTION_PATH says which.
"""

import json
import math
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
ATTENTION_PATH = "sdpa" if HAS_SDPA else "math"


def torch_at_least(major: int, minor: int) -> bool:
    parts = torch.__version__.split("+")[0].split(".")
    return (int(parts[0]), int(parts[1])) >= (major, minor)


# enable_gqa (2.5 and later) lets SDPA read Hkv < H key/value heads without copying them.
HAS_SDPA_GQA = HAS_SDPA and torch_at_least(2, 5)


@dataclass(frozen=True)
class Preset:
    arch: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    context: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


# The same table as tools/bench_presets.cpp.
PRESETS = {
    ("gpt2", "tiny"): Preset("gpt2", 4, 128, 4, 4, 512, 2048, 256),
    ("gpt2", "124M"): Preset("gpt2", 12, 768, 12, 12, 3072, 50257, 1024),
    ("gpt2", "350M"): Preset("gpt2", 24, 1024, 16, 16, 4096, 50257, 1024),
    ("gpt2", "1B"): Preset("gpt2", 32, 1600, 25, 25, 6400, 50257, 1024),
    ("llama", "tiny"): Preset("llama", 4, 128, 4, 2, 352, 2048, 256),
    ("llama", "124M"): Preset("llama", 12, 768, 12, 4, 2048, 32000, 1024),
    ("llama", "350M"): Preset("llama", 24, 1024, 16, 4, 2816, 32000, 1024),
    ("llama", "1B"): Preset("llama", 22, 2048, 32, 4, 5632, 32000, 2048),
}

NORM_EPS = 1e-5
ROPE_THETA = 10000.0


def math_attention(q, k, v, causal: bool):
    """softmax(q k^T / sqrt(Dh)) v over [B, H, T, Dh] inputs, k and v already at H heads.
    With causal and Tk > Tq the queries are the last Tq positions (a KV cache's view)."""
    tq, tk = q.shape[-2], k.shape[-2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        rows = torch.arange(tk - tq, tk, device=q.device).unsqueeze(1)
        cols = torch.arange(tk, device=q.device).unsqueeze(0)
        scores = scores.masked_fill(cols > rows, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    return torch.matmul(probs, v)


def attend(q, k, v, causal: bool):
    """Attention of q [B, H, Tq, Dh] over k, v [B, Hkv, Tk, Dh]. A causal call has Tq == Tk;
    one decoding step (Tq = 1) attends to the whole cache and is not causal."""
    groups = q.shape[1] // k.shape[1]
    if HAS_SDPA:
        if groups > 1 and HAS_SDPA_GQA:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return math_attention(q, k, v, causal)


class RMSNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        # Normalised in f32 whatever x is, as rlaif's kernels accumulate in f32 or wider.
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + NORM_EPS)
        return (y * self.weight.float()).to(x.dtype)


def rope_tables(p: Preset, device):
    """cos and sin of position * theta^(-2i/Dh), [context, Dh/2], computed in double and
    rounded to f32 once (as kernels/cpu/cpu_rope.cpp does)."""
    half = p.head_dim // 2
    inv_freq = ROPE_THETA ** (-2.0 * torch.arange(half, dtype=torch.float64) / p.head_dim)
    angles = torch.arange(p.context, dtype=torch.float64).unsqueeze(1) * inv_freq
    return torch.cos(angles).float().to(device), torch.sin(angles).float().to(device)


def apply_rope(x, cos, sin):
    """Rotate-half RoPE of x [B, H, T, Dh]: feature i pairs with i + Dh/2; cos, sin [T, Dh/2]."""
    half = x.shape[-1] // 2
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * c - b * s, b * c + a * s), dim=-1)


class Block(nn.Module):
    def __init__(self, p: Preset):
        super().__init__()
        self.p = p
        gpt2 = p.arch == "gpt2"
        d, dh = p.d_model, p.head_dim
        norm = (lambda: nn.LayerNorm(d, eps=NORM_EPS)) if gpt2 else (lambda: RMSNorm(d))
        self.attn_norm, self.mlp_norm = norm(), norm()
        self.q_proj = nn.Linear(d, p.heads * dh, bias=gpt2)
        self.k_proj = nn.Linear(d, p.kv_heads * dh, bias=gpt2)
        self.v_proj = nn.Linear(d, p.kv_heads * dh, bias=gpt2)
        self.o_proj = nn.Linear(p.heads * dh, d, bias=gpt2)
        if gpt2:
            self.fc_in = nn.Linear(d, p.ffn)
            self.fc_out = nn.Linear(p.ffn, d)
        else:
            self.gate = nn.Linear(d, p.ffn, bias=False)
            self.up = nn.Linear(d, p.ffn, bias=False)
            self.down = nn.Linear(p.ffn, d, bias=False)

    def forward(self, x, rope, cache, start: int):
        p = self.p
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, T, p.heads, p.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, T, p.kv_heads, p.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, T, p.kv_heads, p.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope[0][start : start + T], rope[1][start : start + T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            # The static cache [B, Hkv, context, Dh] is written in place; attention reads the
            # filled prefix.
            kc, vc = cache
            kc[:, :, start : start + T] = k
            vc[:, :, start : start + T] = v
            k, v = kc[:, :, : start + T], vc[:, :, : start + T]
        assert T == 1 or start == 0, "a multi-token forward must start at position 0"
        y = attend(q, k, v, causal=T > 1)
        x = x + self.o_proj(y.transpose(1, 2).reshape(B, T, p.heads * p.head_dim))
        h = self.mlp_norm(x)
        if p.arch == "gpt2":
            m = self.fc_out(F.gelu(self.fc_in(h), approximate="tanh"))
        else:
            m = self.down(F.silu(self.gate(h)) * self.up(h))
        return x + m


class PresetModel(nn.Module):
    def __init__(self, p: Preset):
        super().__init__()
        self.p = p
        self.tok_emb = nn.Embedding(p.vocab, p.d_model)
        self.pos_emb = nn.Embedding(p.context, p.d_model) if p.arch == "gpt2" else None
        self.blocks = nn.ModuleList(Block(p) for _ in range(p.layers))
        self.final_norm = (
            nn.LayerNorm(p.d_model, eps=NORM_EPS) if p.arch == "gpt2" else RMSNorm(p.d_model)
        )
        if p.arch == "llama":
            cos, sin = rope_tables(p, "cpu")
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.init_weights()

    def init_weights(self):
        # N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 layers), biases 0,
        # norm gains 1 (model/transformer.cpp's init_weights).
        residual_std = 0.02 / math.sqrt(2.0 * self.p.layers)
        for name, w in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(w)
            elif w.dim() == 1:
                nn.init.ones_(w)
            elif name.endswith(("o_proj.weight", "fc_out.weight", "down.weight")):
                nn.init.normal_(w, 0.0, residual_std)
            else:
                nn.init.normal_(w, 0.0, 0.02)

    def hidden(self, ids, cache=None, start: int = 0):
        """Final-norm hidden states [B, T, D] of ids [B, T] at positions start.. start+T-1;
        cache: one (keys, values) pair per layer, or None."""
        T = ids.shape[1]
        x = self.tok_emb(ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, start + T, device=ids.device))
        rope = (self.rope_cos, self.rope_sin) if self.p.arch == "llama" else None
        for i, block in enumerate(self.blocks):
            x = block(x, rope, None if cache is None else cache[i], start)
        return self.final_norm(x)

    def logits(self, h):
        # The head is the token embedding (tied).
        return F.linear(h, self.tok_emb.weight)


def parameter_count(model: nn.Module) -> int:
    return sum(w.numel() for w in model.parameters())


# ---- timing and output shared by the scripts ----


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return "cpu"


class Timer:
    """Elapsed seconds between start() and stop(): CUDA events on cuda (synchronised around),
    perf_counter on cpu."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def start(self):
        if self.cuda:
            torch.cuda.synchronize()
            self.begin = torch.cuda.Event(enable_timing=True)
            self.begin.record()
        else:
            self.t0 = time.perf_counter()

    def mark(self):
        """A point between start and stop: an event on cuda (read after stop), a time on cpu."""
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def since_start(self, mark) -> float:
        if self.cuda:
            return self.begin.elapsed_time(mark) / 1e3
        return mark - self.t0

    def stop(self) -> float:
        end = self.mark()
        if self.cuda:
            torch.cuda.synchronize()
        return self.since_start(end)


def median(xs):
    return statistics.median(xs)


def print_table(headers, rows):
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_json(path: str, obj: dict):
    if path:
        with open(path, "w") as f:
            f.write(json.dumps(obj) + "\n")


def check_device_dtype(device: str, dtype: str):
    """Refuses what cannot run here: cuda without a GPU; bf16 is cuda-only (as in rlaif)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    if dtype == "bf16" and device != "cuda":
        raise SystemExit("--dtype bf16 needs --device cuda (the CPU figures are f32)")


def add_common_args(ap, reps: int, warmup: int, reps_help: str, warmup_help: str):
    """The flags every peer takes: --device, --dtype, --reps, --warmup, --seed, --threads, --json."""
    ap.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    ap.add_argument(
        "--dtype", choices=["f32", "bf16"], default=None, help="default: bf16 on cuda, f32 on cpu"
    )
    ap.add_argument("--reps", type=int, default=reps, help=reps_help)
    ap.add_argument("--warmup", type=int, default=warmup, help=warmup_help)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--json", default="", help="write the figures to this file as one JSON line")


def apply_common_args(args):
    """Fills --dtype's default, refuses what cannot run here, and applies --threads and --seed."""
    if args.dtype is None:
        args.dtype = "bf16" if args.device == "cuda" else "f32"
    check_device_dtype(args.device, args.dtype)
    if args.reps < 1 or args.warmup < 0:
        raise SystemExit("--reps must be positive and --warmup not negative")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def run_info(bench: str, args) -> dict:
    """What every peer's JSON starts with: the benchmark, torch, the device and the timing."""
    return {
        "bench": bench,
        "peer": "torch",
        "torch_version": torch.__version__,
        "device": args.device,
        "device_name": device_name(args.device),
        "dtype": args.dtype,
        "attention": ATTENTION_PATH,
        "reps": args.reps,
        "warmup": args.warmup,
    }

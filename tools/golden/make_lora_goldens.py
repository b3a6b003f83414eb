#!/usr/bin/python3
"""Golden data for LoRA adapter training (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large
Language Models"), computed by an independent reference in PyTorch, in float64.

Run once, offline, with Debian's python3-torch (apt-get install python3-torch):
    /usr/bin/python3 tools/golden/make_lora_goldens.py tests/data/lora_goldens
For each family (a Llama and a GPT-2, both tiny, with random seeded weights) it writes FAMILY/:

  base/config.json, base/model.safetensors
      a Hugging Face model directory (float32, Hugging Face names and layouts: the Llama one as
      make_model_goldens.py writes it; GPT-2 with its fused, transposed Conv1D weights [in, out]).
  adapter/adapter_config.json, adapter/adapter_model.safetensors
      a LoRA adapter in the layout PEFT saves: base_model.model.<module>.lora_A.weight [r, in] and
      .lora_B.weight [out, r], float32, metadata {"format": "pt"}; A random (the Kaiming-uniform
      bound of nn.Linear) and B random too (non-zero, so that A has a gradient at step 1).
  goldens.safetensors (float32 / int32, metadata {"torch": version})
      ids, targets, positions [2, 7]; logits [14, V] with the initial adapter; merged.logits
      [14, V] from a separate forward of the merged weights W + scale·B·A; loss.step0..4 (the
      loss before each of 5 AdamW steps) and loss.final (after them); grad_norm.step0..4 (the
      total gradient norm before clipping); grad.<adapter name> (the step-0 gradient, before
      clipping) and final.<adapter name> (the adapter after the 5 steps).

The LoRA forward of a targeted module (dropout 0, PEFT's LoraLayer equations):
    y = base(x) + scale · (x Aᵀ) Bᵀ,          A: [r, in], B: [out, r]
    base(x) = x Wᵀ (+ b)  for nn.Linear (W [out, in], fan_in_fan_out false: Llama)
    base(x) = x W + b     for Conv1D    (W [in, out], fan_in_fan_out true:  GPT-2)
    scale = lora_alpha / r (plain LoRA: Llama) or lora_alpha / √r (rsLoRA: GPT-2)
Merged: W' = W + scale · B A (nn.Linear), W' = W + scale · (B A)ᵀ (Conv1D).

Training: only A and B of every targeted module (the base is frozen), the same batch each step,
float64 throughout:
    for step in 0..4:  loss = CE(forward);  g = ∇loss;  clip_grad_norm_(g, 1.0);  AdamW.step()
with torch.optim.AdamW(lr 1e-2, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1) over all A and B,
constant learning rate. The script re-runs the training with a hand-written AdamW and clipping (the
equations the README states) and checks that both agree.
"""
import contextlib
import json
import math
import os
import sys

import torch

# Import make_model_goldens.py (its Llama forward, weight initialisation and safetensors writer)
# from this script's folder without leaving a __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_goldens as mmg  # noqa: E402

torch.set_default_dtype(torch.float64)

BATCH, SEQ = 2, 7
# Row 1 of the batch starts at this position (row 0 at 0): within GPT-2's 32 learned positions.
POSITION_OFFSET = 20
# mmg.forward lays the positions out from its module global; use ours (rows from 0 and from 20).
mmg.POSITION_OFFSET = POSITION_OFFSET

# LoRA and training settings.
RANK, ALPHA = 4, 8
B_INIT_STD = 0.1  # B ~ N(0, 0.1²) (PEFT would start it at 0)
STEPS = 5
LR, BETAS, ADAM_EPS, WEIGHT_DECAY = 1e-2, (0.9, 0.95), 1e-8, 0.1
MAX_GRAD_NORM = 1.0
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6)

LLAMA = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 64,
    "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 4, "intermediate_size": 32,
    "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
    "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32",
}

GPT2 = {
    "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 64, "n_embd": 16,
    "n_layer": 2, "n_head": 4, "n_inner": 32, "n_positions": 32,
    "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "attn_pdrop": 0.0,
    "embd_pdrop": 0.0, "resid_pdrop": 0.0, "initializer_range": 0.02,
    "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "bos_token_id": 1,
    "eos_token_id": 2, "torch_dtype": "float32",
}

FAMILIES = {
    "llama": {
        "config": LLAMA, "seed": 3000, "fan_in_fan_out": False, "use_rslora": False,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"],
    },
    # "c_proj" matches both attn.c_proj and mlp.c_proj (PEFT matches a module name's suffix).
    "gpt2": {
        "config": GPT2, "seed": 3100, "fan_in_fan_out": True, "use_rslora": True,
        "target_modules": ["c_attn", "c_proj", "c_fc"],
    },
}


# --- GPT-2 (transformers' modeling_gpt2.py, GPT2LMHeadModel) -------------------------------------

def gpt2_weight_shapes(c):
    """Hugging Face's GPT-2 names; Conv1D weights are stored [in, out] (transposed vs nn.Linear)."""
    d, f = c["n_embd"], c["n_inner"] or 4 * c["n_embd"]
    shapes = {"transformer.wte.weight": (c["vocab_size"], d),
              "transformer.wpe.weight": (c["n_positions"], d)}
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        shapes[p + "ln_1.weight"] = (d,)
        shapes[p + "ln_1.bias"] = (d,)
        shapes[p + "attn.c_attn.weight"] = (d, 3 * d)  # columns: q | k | v
        shapes[p + "attn.c_attn.bias"] = (3 * d,)
        shapes[p + "attn.c_proj.weight"] = (d, d)
        shapes[p + "attn.c_proj.bias"] = (d,)
        shapes[p + "ln_2.weight"] = (d,)
        shapes[p + "ln_2.bias"] = (d,)
        shapes[p + "mlp.c_fc.weight"] = (d, f)
        shapes[p + "mlp.c_fc.bias"] = (f,)
        shapes[p + "mlp.c_proj.weight"] = (f, d)
        shapes[p + "mlp.c_proj.bias"] = (d,)
    shapes["transformer.ln_f.weight"] = (d,)
    shapes["transformer.ln_f.bias"] = (d,)
    return shapes  # no lm_head.weight: the head is tied to wte


def gpt2_random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in gpt2_weight_shapes(c).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):  # gains near 1
            t = 1.0 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float32)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=g, dtype=torch.float32)
        else:
            t = 0.2 * torch.randn(shape, generator=g, dtype=torch.float32)
        w[name] = t
    return w


def layer_norm(x, weight, bias, eps):
    """nn.LayerNorm: (x − mean) / √(var + eps) · weight + bias, var the biased variance."""
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def forward_gpt2(c, w, ids, positions, project):
    """GPT2LMHeadModel's logits [B·T, V]. project(x, module) is a Conv1D (x W + b), with or without
    LoRA."""
    B, T = ids.shape
    d, H = c["n_embd"], c["n_head"]
    Dh = d // H
    eps = c["layer_norm_epsilon"]
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][positions]
    causal = mmg.layer_mask(c, T, False)  # 0 where key j ≤ query i, −inf elsewhere
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = project(h, p + "attn.c_attn")  # [B, T, 3d]: q | k | v
        q, k, v = (t.view(B, T, H, Dh).transpose(1, 2) for t in qkv.split(d, dim=-1))
        scores = q @ k.transpose(2, 3) / math.sqrt(Dh) + causal  # scale_attn_weights
        attn = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, d)
        x = x + project(attn, p + "attn.c_proj")
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = x + project(mmg.gelu_tanh(project(h, p + "mlp.c_fc")), p + "mlp.c_proj")  # gelu_new
    x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return (x @ w["transformer.wte.weight"].T).reshape(B * T, -1)  # tied head


# --- LoRA ---------------------------------------------------------------------------------------

def lora_term(x, A, B, scale):
    """scale · (x Aᵀ) Bᵀ: x [.., in] → [.., r] → [.., out] (PEFT: lora_B(lora_A(x)) · scaling)."""
    return scale * ((x @ A.T) @ B.T)


def lora_scale(use_rslora):
    return ALPHA / math.sqrt(RANK) if use_rslora else ALPHA / RANK


def targeted_modules(weights, target_modules):
    """The modules PEFT's target_modules list selects: a module whose full name equals a target or
    ends with "." + target; here the ones with a 2-D weight, in the model's order."""
    modules = []
    for name, t in weights.items():
        if not name.endswith(".weight") or t.dim() != 2:
            continue
        module = name[: -len(".weight")]
        if any(module == k or module.endswith("." + k) for k in target_modules):
            modules.append(module)
    return modules


def features(weights, module, fan_in_fan_out):
    """(in_features, out_features) as PEFT takes them: nn.Linear weight [out, in], Conv1D [in, out]."""
    rows, cols = weights[module + ".weight"].shape
    return (rows, cols) if fan_in_fan_out else (cols, rows)


def peft_name(module, which):
    """PEFT's saved name (the adapter name "default" removed) under PeftModelForCausalLM."""
    return f"base_model.model.{module}.lora_{which}.weight"


def initial_adapter(weights, modules, fan_in_fan_out, seed):
    """A ~ U(−1/√in, 1/√in): nn.init.kaiming_uniform_(a=√5), gain √(2/(1+5)) = √(1/3), bound
    gain·√(3/in) = 1/√in; B ~ N(0, B_INIT_STD²) instead of PEFT's zeros. float32, as stored."""
    g = torch.Generator().manual_seed(seed)
    lora = {}
    for m in modules:
        fan_in, fan_out = features(weights, m, fan_in_fan_out)
        bound = 1.0 / math.sqrt(fan_in)
        A = (2.0 * torch.rand((RANK, fan_in), generator=g, dtype=torch.float32) - 1.0) * bound
        B = B_INIT_STD * torch.randn((fan_out, RANK), generator=g, dtype=torch.float32)
        lora[m] = (A, B)
    return lora


def merged_weights(weights, lora, scale, fan_in_fan_out):
    """W' = W + scale · B A for nn.Linear; W' = W + scale · (B A)ᵀ for Conv1D's [in, out] layout."""
    out = dict(weights)
    for m, (A, B) in lora.items():
        delta = scale * (B @ A)  # [out, in]
        out[m + ".weight"] = weights[m + ".weight"] + (delta.T if fan_in_fan_out else delta)
    return out


@contextlib.contextmanager
def llama_projections_with(lora, scale):
    """Let mmg.forward's projections (its module-level linear(x, w, name): x Wᵀ + b) add the LoRA
    term of the targeted modules while inside this block."""
    base_linear = mmg.linear

    def linear(x, w, name):
        y = base_linear(x, w, name)
        if name in lora:
            y = y + lora_term(x, *lora[name], scale)
        return y

    mmg.linear = linear
    try:
        yield
    finally:
        mmg.linear = base_linear


def make_forward(family, c, scale, ids, positions):
    """forward(weights, lora) → logits [B·T, V] with the LoRA term on the modules in lora."""
    if family == "llama":
        def forward(w, lora):
            with llama_projections_with(lora, scale):
                return mmg.forward(c, w, ids)  # positions: rows from 0 and POSITION_OFFSET
        return forward

    def forward(w, lora):
        def project(x, module):
            y = x @ w[module + ".weight"] + w[module + ".bias"]  # Conv1D
            if module in lora:
                y = y + lora_term(x, *lora[module], scale)
            return y
        return forward_gpt2(c, w, ids, positions, project)
    return forward


# --- training -----------------------------------------------------------------------------------

def cross_entropy(logits, targets):
    """Mean over the targets that are not −100 of −log softmax(logits)[target]."""
    return torch.nn.functional.cross_entropy(logits, targets.reshape(-1), ignore_index=-100)


def manual_clip_and_adamw(params, state, step):
    """The reference equations, for the check against torch's: with g the gradients,
        total = √(Σ ‖g‖²),  c = min(1, MAX_GRAD_NORM / (total + 1e-6)),  g ← c · g
    then AdamW (t = step + 1), for each tensor:
        p ← p · (1 − lr · weight_decay)                  (decoupled decay, before the update)
        m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²   (m, v start at 0)
        p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)"""
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in params))
    coef = min(1.0, MAX_GRAD_NORM / (total.item() + CLIP_EPS))
    t = step + 1
    b1, b2 = BETAS
    with torch.no_grad():
        for i, p in enumerate(params):
            g = p.grad * coef
            m, v = state.setdefault(i, (torch.zeros_like(p), torch.zeros_like(p)))
            p.mul_(1.0 - LR * WEIGHT_DECAY)
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * g * g
            state[i] = (m, v)
            denom = v.sqrt() / math.sqrt(1.0 - b2 ** t) + ADAM_EPS
            p.sub_(LR / (1.0 - b1 ** t) * m / denom)
    return total


def train(forward, base, lora32, targets, optimizer="torch", grad_noise=None):
    """STEPS steps of clipped AdamW on the adapter (float64 copies of the float32 values); the base
    stays frozen. grad_noise (a relative size) perturbs the gradients, to gauge the sensitivity."""
    lora = {m: (A.double().requires_grad_(), B.double().requires_grad_())
            for m, (A, B) in lora32.items()}
    params = [t for pair in lora.values() for t in pair]
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=ADAM_EPS, weight_decay=WEIGHT_DECAY)
    state, noise_gen = {}, torch.Generator().manual_seed(7)
    losses, norms, logits0, grads0 = [], [], None, None
    for step in range(STEPS):
        for p in params:
            p.grad = None
        logits = forward(base, lora)
        loss = cross_entropy(logits, targets)
        loss.backward()
        if grad_noise:
            for p in params:
                p.grad += grad_noise * p.grad * torch.randn(p.shape, generator=noise_gen)
        if step == 0:  # the raw gradient, before clipping
            logits0 = logits.detach()
            grads0 = {m: (A.grad.clone(), B.grad.clone()) for m, (A, B) in lora.items()}
        if optimizer == "torch":
            norm = torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            opt.step()
        else:
            norm = manual_clip_and_adamw(params, state, step)
        losses.append(loss.item())
        norms.append(float(norm))
    with torch.no_grad():
        losses.append(cross_entropy(forward(base, lora), targets).item())  # loss.final
    final = {m: (A.detach(), B.detach()) for m, (A, B) in lora.items()}
    return losses, norms, logits0, grads0, final


# --- output -------------------------------------------------------------------------------------

def adapter_config(spec):
    """adapter_config.json as PEFT's LoraConfig.save_pretrained writes it (json.dumps(indent=2,
    sort_keys=True), no trailing newline). init_lora_weights false: PEFT then keeps both A and B at
    nn.Linear's random initialisation, i.e. B non-zero as here; loaders ignore the key."""
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "base",
        "bias": "none", "exclude_modules": None, "fan_in_fan_out": spec["fan_in_fan_out"],
        "inference_mode": True, "init_lora_weights": False, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {},
        "lora_alpha": ALPHA, "lora_dropout": 0.0, "megatron_config": None,
        "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA",
        "r": RANK, "rank_pattern": {}, "revision": None,
        "target_modules": spec["target_modules"], "task_type": "CAUSAL_LM", "use_dora": False,
        "use_rslora": spec["use_rslora"],
    }


def adapter_tensors(lora):
    """{PEFT name: float32 tensor}, sorted by name as the safetensors library writes them."""
    out = {}
    for m, (A, B) in lora.items():
        out[peft_name(m, "A")] = A.float().contiguous()
        out[peft_name(m, "B")] = B.float().contiguous()
    return dict(sorted(out.items()))


def dir_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def make_family(root, family, spec):
    c, seed = spec["config"], spec["seed"]
    out = os.path.join(root, family)
    os.makedirs(os.path.join(out, "base"), exist_ok=True)
    os.makedirs(os.path.join(out, "adapter"), exist_ok=True)

    # The base model directory.
    with open(os.path.join(out, "base", "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    w32 = mmg.random_weights(c, seed) if family == "llama" else gpt2_random_weights(c, seed)
    mmg.write_safetensors(os.path.join(out, "base", "model.safetensors"), w32, {"format": "pt"})

    # The initial adapter.
    modules = targeted_modules(w32, spec["target_modules"])
    lora32 = initial_adapter(w32, modules, spec["fan_in_fan_out"], seed + 1)
    with open(os.path.join(out, "adapter", "adapter_config.json"), "w") as f:
        f.write(json.dumps(adapter_config(spec), indent=2, sort_keys=True))
    mmg.write_safetensors(os.path.join(out, "adapter", "adapter_model.safetensors"),
                          adapter_tensors(lora32), {"format": "pt"})

    # The batch: as make_model_goldens.py's, rows from positions 0 and POSITION_OFFSET.
    g = torch.Generator().manual_seed(seed + 2)
    V = c["vocab_size"]
    ids = torch.randint(0, V, (BATCH, SEQ), generator=g)
    targets = torch.cat((ids[:, 1:], torch.randint(0, V, (BATCH, 1), generator=g)), dim=1)
    targets[1, 3] = -100
    positions = torch.arange(SEQ).expand(BATCH, SEQ) + torch.tensor([[0], [POSITION_OFFSET]])

    scale = lora_scale(spec["use_rslora"])
    base = {n: t.double() for n, t in w32.items()}
    forward = make_forward(family, c, scale, ids, positions)
    losses, norms, logits0, grads0, final = train(forward, base, lora32, targets)

    # Check: the merged weights' forward (with no LoRA term; for Llama, make_model_goldens.py's
    # unchanged forward) gives the adapter forward's logits.
    lora64 = {m: (A.double(), B.double()) for m, (A, B) in lora32.items()}
    merged = merged_weights(base, lora64, scale, spec["fan_in_fan_out"])
    with torch.no_grad():
        merged_logits = (mmg.forward(c, merged, ids) if family == "llama"
                         else forward(merged, {}))
    merged_diff = (merged_logits - logits0).abs().max().item()
    assert merged_diff < 1e-12, f"{family}: merged logits differ by {merged_diff}"
    base_diff = (forward(base, {}) - logits0).abs().max().item()
    assert base_diff > 1e-3, f"{family}: the adapter hardly changes the logits ({base_diff})"

    # Check: the loss falls at every step.
    assert all(b < a for a, b in zip(losses, losses[1:])), f"{family}: losses {losses}"

    # Check: the hand-written clipping and AdamW (the README's equations) give the same run.
    m_losses, m_norms, _, _, m_final = train(forward, base, lora32, targets, optimizer="manual")
    adam_diff = max((final[m][k] - m_final[m][k]).abs().max().item()
                    for m in final for k in (0, 1))
    assert adam_diff < 1e-12, f"{family}: hand-written AdamW differs by {adam_diff}"
    assert max(abs(a - b) for a, b in zip(losses + norms, m_losses + m_norms)) < 1e-12

    # Sensitivity (printed only): gradients perturbed by a relative 1e-6, as in a float32 run.
    n_losses, _, _, _, n_final = train(forward, base, lora32, targets, grad_noise=1e-6)
    noise_diff = max((final[m][k] - n_final[m][k]).abs().max().item()
                     for m in final for k in (0, 1))

    goldens = {"ids": ids.int(), "targets": targets.int(), "positions": positions.int(),
               "logits": logits0.float(), "merged.logits": merged_logits.float()}
    for step in range(STEPS):
        goldens[f"loss.step{step}"] = torch.tensor([losses[step]], dtype=torch.float32)
    goldens["loss.final"] = torch.tensor([losses[STEPS]], dtype=torch.float32)
    for step in range(STEPS):
        goldens[f"grad_norm.step{step}"] = torch.tensor([norms[step]], dtype=torch.float32)
    for name, t in adapter_tensors(grads0).items():
        goldens["grad." + name] = t
    for name, t in adapter_tensors(final).items():
        goldens["final." + name] = t
    mmg.write_safetensors(os.path.join(out, "goldens.safetensors"), goldens,
                          {"torch": torch.__version__})

    size = dir_size(out)
    assert size < 100_000, f"{family}: {size} bytes"
    smallest = min(min(A.abs().min().item(), B.abs().min().item()) for A, B in grads0.values())
    print(f"{family}: scale {scale:g}, {len(modules)} modules, {size} bytes")
    print("  losses " + " ".join(f"{x:.6f}" for x in losses[:STEPS]) + f" final {losses[STEPS]:.6f}"
          f" (ln V = {math.log(V):.3f})")
    print("  grad norms before clipping " + " ".join(f"{x:.6f}" for x in norms))
    print(f"  |merged − adapter logits| {merged_diff:.2e}, |adapter − base logits| {base_diff:.3f},"
          f" |torch − hand-written AdamW| {adam_diff:.2e}")
    print(f"  smallest |step-0 gradient| {smallest:.2e}; gradients perturbed by 1e-6 move the final"
          f" adapter by {noise_diff:.2e} and loss.final by {abs(n_losses[-1] - losses[-1]):.2e}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_lora_goldens.py OUT_DIR")
    for family, spec in FAMILIES.items():
        make_family(sys.argv[1], family, spec)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Golden logits, loss and gradients of small random-weight models of each Llama-like family,
computed by an independent reference written from Hugging Face transformers' modeling equations
(modeling_llama.py, modeling_qwen2.py, modeling_qwen3.py, modeling_gemma3.py) in PyTorch, in
float64.

Run once, offline, with Debian's python3-torch (apt-get install python3-torch):
    /usr/bin/python3 tools/golden/make_model_goldens.py tests/data/model_goldens
For each family it writes FAMILY/config.json and FAMILY/model.safetensors (float32 weights, Hugging
Face names: a model directory rlaif loads) and FAMILY/goldens.safetensors: "ids" and "targets"
[2, 7] (int32; -100 = ignored), "positions" [2, 7] (int32: row 0 from 0, row 1 from 3000),
"logits" [14, vocab], "loss" [1] (the mean cross-entropy over the
targets that are not ignored), and "grad.NAME" for every weight NAME (the loss's gradient).
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)

# Odd sizes on purpose: a head size (12) that is not hidden / heads (40 / 4), grouped-query
# attention (4 query heads over 2 kv heads), a vocabulary that is not a multiple of 64.
BASE = {
    "vocab_size": 97, "hidden_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 12, "intermediate_size": 72,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
}
# Row 1 of the batch starts at this position (row 0 at 0), so that the long wavelengths turn and
# rope_scaling changes the logits.
POSITION_OFFSET = 3000

FAMILIES = {
    "llama": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"],
                  tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
    # Qwen2 with its sliding window on: the layers from max_window_layers on slide (layer 1 here),
    # and the window (3 keys) is shorter than the sequence.
    "qwen2": dict(BASE, model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                  tie_word_embeddings=False, use_sliding_window=True, sliding_window=3,
                  max_window_layers=1, rope_theta=1000000.0),
    "qwen3": dict(BASE, model_type="qwen3", architectures=["Qwen3ForCausalLM"],
                  tie_word_embeddings=True, attention_bias=False, use_sliding_window=False,
                  sliding_window=None, max_window_layers=2, rope_scaling=None,
                  rope_theta=1000000.0),
    # Llama 3.2's shape: tied head, Llama 3's RoPE base and its rope_scaling, under which these
    # frequencies fall in all three regimes (kept, interpolated, divided by the factor).
    "llama3": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"],
                   tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
                   rope_theta=500000.0,
                   rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192}),
    "llama_linear": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"],
                         tie_word_embeddings=False, rope_scaling={"type": "linear",
                                                                  "factor": 4.0}),
    # Gemma 3's text model (modeling_gemma3.py): a sliding layer (its own RoPE base, unscaled,
    # and a 4-key window, shorter than the sequence) and a full one (rope_theta with Gemma 3 4B's
    # linear rope_scaling).
    "gemma3": {
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "vocab_size": 97,
        "hidden_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 12, "intermediate_size": 72,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
        "query_pre_attn_scalar": 16, "sliding_window": 4,
        "layer_types": ["sliding_attention", "full_attention"],
        "hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": None,
        "attn_logit_softcapping": None, "attention_bias": False, "tie_word_embeddings": True,
        "bos_token_id": 2, "eos_token_id": 1,
    },
}


def weight_shapes(c):
    d, f = c["hidden_size"], c["intermediate_size"]
    q = c["num_attention_heads"] * c["head_dim"]
    kv = c["num_key_value_heads"] * c["head_dim"]
    qkv_bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
    gemma = c["model_type"] == "gemma3_text"
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], d)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "self_attn.q_proj.weight"] = (q, d)
        shapes[p + "self_attn.k_proj.weight"] = (kv, d)
        shapes[p + "self_attn.v_proj.weight"] = (kv, d)
        if qkv_bias:
            shapes[p + "self_attn.q_proj.bias"] = (q,)
            shapes[p + "self_attn.k_proj.bias"] = (kv,)
            shapes[p + "self_attn.v_proj.bias"] = (kv,)
        shapes[p + "self_attn.o_proj.weight"] = (d, q)
        if c.get("attention_bias", False):
            shapes[p + "self_attn.o_proj.bias"] = (d,)
        if c["model_type"] in ("qwen3", "gemma3_text"):
            shapes[p + "self_attn.q_norm.weight"] = (c["head_dim"],)
            shapes[p + "self_attn.k_norm.weight"] = (c["head_dim"],)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        if gemma:
            shapes[p + "pre_feedforward_layernorm.weight"] = (d,)
            shapes[p + "post_feedforward_layernorm.weight"] = (d,)
        shapes[p + "mlp.gate_proj.weight"] = (f, d)
        shapes[p + "mlp.up_proj.weight"] = (f, d)
        shapes[p + "mlp.down_proj.weight"] = (d, f)
    shapes["model.norm.weight"] = (d,)
    if not c.get("tie_word_embeddings", gemma):
        shapes["lm_head.weight"] = (c["vocab_size"], d)
    return shapes


def random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in weight_shapes(c).items():
        if name.endswith("norm.weight"):  # gains near 1, so that they matter but do not dominate
            t = 0.1 * torch.randn(shape, generator=g, dtype=torch.float32)
            if c["model_type"] != "gemma3_text":  # Gemma stores w of the gain (1 + w)
                t = t + 1.0
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=g, dtype=torch.float32)
        else:
            t = 0.2 * torch.randn(shape, generator=g, dtype=torch.float32)
        w[name] = t
    return w


def rms_norm(x, weight, eps):  # LlamaRMSNorm / Qwen3RMSNorm
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def inverse_frequencies(c):  # transformers' ROPE_INIT_FUNCTIONS: default, linear, llama3
    dim = c["head_dim"]
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).double() / dim))
    scaling = c.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind == "llama3":  # _compute_llama3_parameters
        factor = scaling["factor"]
        low_freq_factor, high_freq_factor = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (
            high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + \
            smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    assert kind == "default", kind
    return inv_freq


def rope_cos_sin(c, positions, local=False):  # LlamaRotaryEmbedding (attention scaling 1 here)
    if local:  # Gemma3's rotary_emb_local: rope_local_base_freq, default rope type
        c = dict(c, rope_theta=c["rope_local_base_freq"], rope_scaling=None)
    inv_freq = inverse_frequencies(c)
    freqs = positions.double()[..., None] * inv_freq  # [B, T, dim/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def linear(x, w, name):
    y = x @ w[name + ".weight"].T
    if name + ".bias" in w:
        y = y + w[name + ".bias"]
    return y


def gemma_rms_norm(x, weight, eps):  # Gemma3RMSNorm: (1 + w)
    variance = x.pow(2).mean(-1, keepdim=True)
    return (x * torch.rsqrt(variance + eps)) * (1.0 + weight)


def gelu_tanh(x):  # gelu_pytorch_tanh
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def sliding_layers(c):
    """Which layers attend within c["sliding_window"] keys, as transformers' configuration
    classes decide it: "layer_types" where given; Qwen2/Qwen3 only with use_sliding_window, then the
    layers from max_window_layers on."""
    n = c["num_hidden_layers"]
    if c.get("sliding_window") is None:
        return [False] * n
    if c["model_type"] in ("qwen2", "qwen3") and not c.get("use_sliding_window", False):
        return [False] * n
    if "layer_types" in c:
        return [t == "sliding_attention" for t in c["layer_types"]]
    return [i >= c["max_window_layers"] for i in range(n)]


def layer_mask(c, T, sliding):
    """The additive mask: causal (key j ≤ query i), and on a sliding layer also j > i - window
    (masking_utils' sliding_window_overlay: kv_idx > q_idx - sliding_window)."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if sliding:
        allowed = allowed & (j > i - c["sliding_window"])
    return torch.zeros(T, T).masked_fill(~allowed, float("-inf"))


def attention(q, k, v, H, KV, scaling, causal):
    k = k.repeat_interleave(H // KV, dim=1)  # repeat_kv
    v = v.repeat_interleave(H // KV, dim=1)
    scores = q @ k.transpose(2, 3) * scaling + causal
    return torch.softmax(scores, dim=-1) @ v


def forward_gemma3(c, w, ids, positions):
    """Gemma3ForCausalLM."""
    B, T = ids.shape
    H, KV, Dh = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps = c["rms_norm_eps"]
    x = w["model.embed_tokens.weight"][ids] * c["hidden_size"] ** 0.5
    sliding = sliding_layers(c)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        local = sliding[i]
        causal = layer_mask(c, T, local)
        cos, sin = rope_cos_sin(c, positions, local)
        cos, sin = cos[:, None], sin[:, None]
        h = gemma_rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, w, p + "self_attn.q_proj").view(B, T, H, Dh)
        k = linear(h, w, p + "self_attn.k_proj").view(B, T, KV, Dh)
        v = linear(h, w, p + "self_attn.v_proj").view(B, T, KV, Dh)
        q = gemma_rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
        k = gemma_rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        attn = attention(q, k, v, H, KV, c["query_pre_attn_scalar"] ** -0.5, causal)
        attn = linear(attn.transpose(1, 2).reshape(B, T, H * Dh), w, p + "self_attn.o_proj")
        x = x + gemma_rms_norm(attn, w[p + "post_attention_layernorm.weight"], eps)
        h = gemma_rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps)
        mlp = linear(gelu_tanh(linear(h, w, p + "mlp.gate_proj")) * linear(h, w, p + "mlp.up_proj"),
                     w, p + "mlp.down_proj")
        x = x + gemma_rms_norm(mlp, w[p + "post_feedforward_layernorm.weight"], eps)
    x = gemma_rms_norm(x, w["model.norm.weight"], eps)
    return (x @ w["model.embed_tokens.weight"].T).reshape(B * T, -1)


def forward(c, w, ids):
    B, T = ids.shape
    H, KV, Dh = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps = c["rms_norm_eps"]
    positions = torch.arange(T).expand(B, T)
    if POSITION_OFFSET:
        positions = positions + torch.tensor([[0], [POSITION_OFFSET]])
    if c["model_type"] == "gemma3_text":
        return forward_gemma3(c, w, ids, positions)
    x = w["model.embed_tokens.weight"][ids]
    cos, sin = rope_cos_sin(c, positions)
    cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, Dh]
    sliding = sliding_layers(c)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        causal = layer_mask(c, T, sliding[i])
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, w, p + "self_attn.q_proj").view(B, T, H, Dh)
        k = linear(h, w, p + "self_attn.k_proj").view(B, T, KV, Dh)
        v = linear(h, w, p + "self_attn.v_proj").view(B, T, KV, Dh)
        if c["model_type"] == "qwen3":  # Qwen3Attention: q_norm / k_norm on each head, pre-RoPE
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)  # repeat_kv
        v = v.repeat_interleave(H // KV, dim=1)
        scores = q @ k.transpose(2, 3) * Dh ** -0.5 + causal
        attn = torch.softmax(scores, dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(B, T, H * Dh)
        x = x + linear(attn, w, p + "self_attn.o_proj")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = linear(h, w, p + "mlp.gate_proj")
        up = linear(h, w, p + "mlp.up_proj")
        x = x + linear(torch.nn.functional.silu(gate) * up, w, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return (x @ head.T).reshape(B * T, -1)


def write_safetensors(path, tensors, metadata=None):
    names = {torch.float32: "F32", torch.int32: "I32"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for b in blobs:
            out.write(b)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_model_goldens.py OUT_DIR")
    root = sys.argv[1]
    for index, (family, config) in enumerate(FAMILIES.items()):
        out = os.path.join(root, family)
        os.makedirs(out, exist_ok=True)
        config = dict(config, torch_dtype="float32")
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        w32 = random_weights(config, seed=1000 + index)
        write_safetensors(os.path.join(out, "model.safetensors"), w32, {"format": "pt"})
        g = torch.Generator().manual_seed(2000 + index)
        ids = torch.randint(0, config["vocab_size"], (2, 7), generator=g)
        targets = torch.cat((ids[:, 1:], torch.randint(0, config["vocab_size"], (2, 1),
                                                       generator=g)), dim=1)
        targets[1, 3] = -100
        w = {n: t.double().requires_grad_() for n, t in w32.items()}
        logits = forward(config, w, ids)
        loss = torch.nn.functional.cross_entropy(logits, targets.reshape(-1), ignore_index=-100)
        loss.backward()
        positions = torch.arange(7).expand(2, 7) + torch.tensor([[0], [POSITION_OFFSET]])
        goldens = {"ids": ids.int(), "targets": targets.int(), "positions": positions.int(),
                   "logits": logits.detach().float(),
                   "loss": loss.detach().float().reshape(1)}
        for n, t in w.items():
            goldens["grad." + n] = t.grad.float()
        write_safetensors(os.path.join(out, "goldens.safetensors"), goldens,
                          {"torch": torch.__version__})
        print(f"{family}: loss {loss.item():.6f} (ln V = {math.log(config['vocab_size']):.3f})")


if __name__ == "__main__":
    main()

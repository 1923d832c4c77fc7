#!/usr/bin/env python3
"""Independent float64 NumPy re-implementation of the decoder families, used to cross-check the
golden fixtures in test/fixtures/families/ and the written-down semantics in their README.

It deliberately does NOT import torch or transformers: it reads config.json (or config.legacy.json)
and the safetensors files directly (BF16 included), the same way the TypeScript side has to, and
compares its logits with the golden logits.

Usage:  python3 tools/reference/numpy_reference.py [--legacy] [CASE_DIR ...]
Exit status 1 if any case differs by more than --atol (default 1e-4).
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "test" / "fixtures" / "families"

GEMMA_FAMILY = ("gemma", "gemma2", "gemma3_text")


# ------------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------------

def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a : base + b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2")
        elif dt == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"unsupported dtype {dt}")
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def load_weights(case_dir: Path) -> dict[str, np.ndarray]:
    index = case_dir / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for f in files:
        w.update(read_safetensors(case_dir / f))
    return w


# ------------------------------------------------------------------------------------------------
# config normalisation (handles transformers 5.x "rope_parameters" and the legacy 4.x spelling)
# ------------------------------------------------------------------------------------------------

def normalise_config(c: dict) -> dict:
    mt = c["model_type"]
    n_layers = c["num_hidden_layers"]
    hidden = c["hidden_size"]
    heads = c["num_attention_heads"]
    cfg = {
        "model_type": mt,
        "hidden": hidden,
        "heads": heads,
        "kv_heads": c.get("num_key_value_heads") or heads,
        "head_dim": c.get("head_dim") or hidden // heads,
        "eps": c.get("rms_norm_eps", 1e-6),
        "layers": n_layers,
        "vocab": c["vocab_size"],
    }
    default_tie = mt in GEMMA_FAMILY
    cfg["tie"] = c.get("tie_word_embeddings", default_tie)

    # --- rope per layer type -------------------------------------------------------------------
    def flat_rope(rp: dict | None, theta_default: float) -> dict:
        rp = dict(rp or {})
        rp.setdefault("rope_type", rp.get("type", "default"))
        rp.setdefault("rope_theta", theta_default)
        return rp

    if mt == "gemma3_text":
        if "rope_parameters" in c and c["rope_parameters"] is not None:
            rp = c["rope_parameters"]
            rope = {
                "full_attention": flat_rope(rp.get("full_attention"), 1_000_000.0),
                "sliding_attention": flat_rope(rp.get("sliding_attention"), 10_000.0),
            }
        else:
            full = dict(c.get("rope_scaling") or {"rope_type": "default"})
            full["rope_theta"] = c.get("rope_theta", 1_000_000.0)
            rope = {
                "full_attention": flat_rope(full, 1_000_000.0),
                "sliding_attention": flat_rope({"rope_type": "default"}, c.get("rope_local_base_freq", 10_000.0)),
            }
    else:
        if c.get("rope_parameters") is not None:
            one = flat_rope(c["rope_parameters"], c.get("rope_theta", 10_000.0))
        else:
            one = flat_rope(c.get("rope_scaling"), c.get("rope_theta", 10_000.0))
        rope = {"full_attention": one, "sliding_attention": one}
    for rp in rope.values():
        if rp["rope_type"] in ("llama3", "yarn", "longrope"):
            rp.setdefault("original_max_position_embeddings", c.get("max_position_embeddings"))
    cfg["rope"] = rope

    # --- layer types / sliding window ----------------------------------------------------------
    sw = c.get("sliding_window")
    lt = c.get("layer_types")
    if mt in ("qwen2", "qwen3") and not c.get("use_sliding_window", False):
        sw = None
    if lt is None:
        if mt == "gemma2":
            lt = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n_layers)]
        elif mt == "gemma3_text":
            pat = c.get("sliding_window_pattern", 6)
            lt = ["sliding_attention" if (i + 1) % pat else "full_attention" for i in range(n_layers)]
        elif mt in ("qwen2", "qwen3"):
            mwl = c.get("max_window_layers", 28)
            lt = ["sliding_attention" if sw is not None and i >= mwl else "full_attention" for i in range(n_layers)]
        elif mt == "mistral":
            lt = ["sliding_attention" if sw is not None else "full_attention"] * n_layers
        else:
            lt = ["full_attention"] * n_layers
    cfg["layer_types"] = lt
    cfg["sliding_window"] = sw

    # --- family switches -----------------------------------------------------------------------
    cfg["norm_plus_one"] = mt in GEMMA_FAMILY
    cfg["embed_scale"] = float(np.float32(math.sqrt(hidden))) if mt in GEMMA_FAMILY else 1.0
    cfg["sandwich"] = mt in ("gemma2", "gemma3_text")
    cfg["qk_norm"] = mt in ("qwen3", "gemma3_text")
    if mt in ("gemma2", "gemma3_text"):
        cfg["scaling"] = c.get("query_pre_attn_scalar", 256) ** -0.5
    else:
        cfg["scaling"] = cfg["head_dim"] ** -0.5
    # Gemma 3 (transformers 5.18) does not pass attn_logit_softcapping to attention at all.
    cfg["attn_softcap"] = c.get("attn_logit_softcapping") if mt == "gemma2" else None
    cfg["final_softcap"] = c.get("final_logit_softcapping") if mt in ("gemma2", "gemma3_text") else None
    if mt == "gemma":
        act = c.get("hidden_act", "gelu_pytorch_tanh")
        act = "gelu_pytorch_tanh" if act == "gelu" else act
    elif mt in ("gemma2", "gemma3_text"):
        act = c.get("hidden_activation", "gelu_pytorch_tanh")
    else:
        act = c.get("hidden_act", "silu")
    cfg["act"] = act
    return cfg


# ------------------------------------------------------------------------------------------------
# math
# ------------------------------------------------------------------------------------------------

def inv_freq(rp: dict, head_dim: int) -> np.ndarray:
    # transformers computes this in float32: 1 / base ** (arange(0, d, 2) / d)
    exps = (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)).astype(np.float32)
    inv = (np.float32(1.0) / np.power(np.float32(rp["rope_theta"]), exps, dtype=np.float32)).astype(np.float32)
    t = rp["rope_type"]
    if t == "default":
        return inv.astype(np.float64)
    if t == "linear":
        return (inv / np.float32(rp["factor"])).astype(np.float64)
    if t == "llama3":
        inv = inv.astype(np.float64)
        factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        old = rp["original_max_position_embeddings"]
        low_w, high_w = old / lo, old / hi
        wl = 2 * math.pi / inv
        out = np.where(wl > low_w, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wl < high_w) & ~(wl > low_w)
        return np.where(medium, smoothed, out)
    raise NotImplementedError(t)


def rope(x: np.ndarray, inv: np.ndarray) -> np.ndarray:
    # x: [heads, T, d]; rotate-half (GPT-NeoX) convention: pairs (i, i + d/2)
    T, d = x.shape[1], x.shape[2]
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]  # [T, d/2]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rot = np.concatenate([-x2, x1], axis=-1)
    return x * cos + rot * sin


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float, plus_one: bool) -> np.ndarray:
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * ((1.0 + w) if plus_one else w)


def activation(name: str, x: np.ndarray) -> np.ndarray:
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name in ("gelu", "gelu_python"):
        from math import erf

        return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))
    raise NotImplementedError(name)


def linear(W: dict, name: str, x: np.ndarray) -> np.ndarray:
    y = x @ W[name + ".weight"].T
    b = W.get(name + ".bias")
    return y + b if b is not None else y


def forward(cfg: dict, W: dict, ids: list[int]) -> np.ndarray:
    T = len(ids)
    H, KV, D = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    eps, p1 = cfg["eps"], cfg["norm_plus_one"]
    emb = W["model.embed_tokens.weight"]
    h = emb[ids] * cfg["embed_scale"]
    q_idx = np.arange(T)[:, None]
    k_idx = np.arange(T)[None, :]
    causal = k_idx <= q_idx
    inv = {lt: inv_freq(rp, D) for lt, rp in cfg["rope"].items()}
    for i in range(cfg["layers"]):
        pre = f"model.layers.{i}."
        lt = cfg["layer_types"][i]
        allowed = causal.copy()
        if lt == "sliding_attention" and cfg["sliding_window"] is not None:
            allowed &= (q_idx - k_idx) < cfg["sliding_window"]
        x = rms_norm(h, W[pre + "input_layernorm.weight"], eps, p1)
        q = linear(W, pre + "self_attn.q_proj", x).reshape(T, H, D).transpose(1, 0, 2)
        k = linear(W, pre + "self_attn.k_proj", x).reshape(T, KV, D).transpose(1, 0, 2)
        v = linear(W, pre + "self_attn.v_proj", x).reshape(T, KV, D).transpose(1, 0, 2)
        if cfg["qk_norm"]:
            q = rms_norm(q, W[pre + "self_attn.q_norm.weight"], eps, p1)
            k = rms_norm(k, W[pre + "self_attn.k_norm.weight"], eps, p1)
        q, k = rope(q, inv[lt]), rope(k, inv[lt])
        rep = H // KV
        k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)  # kv head j serves q heads j*rep..
        s = q @ k.transpose(0, 2, 1) * cfg["scaling"]
        if cfg["attn_softcap"] is not None:
            s = np.tanh(s / cfg["attn_softcap"]) * cfg["attn_softcap"]
        s = np.where(allowed[None], s, -np.inf)
        s = s - s.max(-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(-1, keepdims=True)
        a = (p @ v).transpose(1, 0, 2).reshape(T, H * D)
        a = linear(W, pre + "self_attn.o_proj", a)
        if cfg["sandwich"]:
            a = rms_norm(a, W[pre + "post_attention_layernorm.weight"], eps, p1)
            h = h + a
            x = rms_norm(h, W[pre + "pre_feedforward_layernorm.weight"], eps, p1)
        else:
            h = h + a
            x = rms_norm(h, W[pre + "post_attention_layernorm.weight"], eps, p1)
        m = activation(cfg["act"], linear(W, pre + "mlp.gate_proj", x)) * linear(W, pre + "mlp.up_proj", x)
        m = linear(W, pre + "mlp.down_proj", m)
        if cfg["sandwich"]:
            m = rms_norm(m, W[pre + "post_feedforward_layernorm.weight"], eps, p1)
        h = h + m
    h = rms_norm(h, W["model.norm.weight"], eps, p1)
    head = emb if cfg["tie"] else W["lm_head.weight"]
    logits = h @ head.T
    if cfg["final_softcap"] is not None:
        logits = np.tanh(logits / cfg["final_softcap"]) * cfg["final_softcap"]
    return logits


def check_case(case_dir: Path, legacy: bool, atol: float) -> bool:
    cfg_file = case_dir / ("config.legacy.json" if legacy else "config.json")
    cfg = normalise_config(json.loads(cfg_file.read_text()))
    W = load_weights(case_dir)
    golden = json.loads((case_dir / "golden.json").read_text())
    worst = 0.0
    for e in golden["inputs"]:
        ref = np.fromfile(case_dir / e["logits_file"], dtype="<f4").reshape(e["shape"]).astype(np.float64)
        got = forward(cfg, W, e["input_ids"])
        worst = max(worst, float(np.abs(got - ref).max()))
    ok = worst <= atol
    print(f"{'OK ' if ok else 'BAD'} {case_dir.name:22s} ({cfg_file.name}) max|numpy64 - golden| = {worst:.3e}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="*", type=Path)
    ap.add_argument("--legacy", action="store_true", help="read config.legacy.json instead of config.json")
    ap.add_argument("--atol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    dirs = args.cases or sorted(p.parent for p in FIXTURES.glob("*/golden.json"))
    ok = all([check_case(d, args.legacy, args.atol) for d in dirs])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

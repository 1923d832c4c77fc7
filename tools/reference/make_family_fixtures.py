#!/usr/bin/env python3
"""Generate golden fixtures for the decoder families with Hugging Face transformers.

For every case below this script

  1. builds a tiny random-weight causal LM from a config
     (``AutoConfig.for_model`` + ``AutoModelForCausalLM.from_config``, eager attention, float32),
  2. re-initialises EVERY parameter (norm weights and biases included) with ``randn * 0.2``
     (token embeddings ``randn * 1.0``) so that e.g. Gemma's ``(1 + w)`` norms and biases matter,
  3. saves it with ``save_pretrained(..., safe_serialization=True)`` into
     ``test/fixtures/families/<case>/`` (config.json + safetensors; generation_config.json removed),
  4. reloads it from disk with ``AutoModelForCausalLM.from_pretrained`` in float32, and
  5. writes the logits of three separate batch-of-1 forward passes (no padding, no attention mask)
     as raw little-endian float32 ``[T, V]`` files plus a ``golden.json`` manifest.

It also runs sanity checks (see ``checks`` in each golden.json):
  * the reloaded model reproduces the in-memory model's logits,
  * "ablations": switching off the feature a case is about (sliding window, softcapping, rope scaling,
    biases, ...) must change the logits, otherwise the fixture would not test that feature,
  * ``config.legacy.json`` (the pre-``rope_parameters`` Hub spelling of the same config, also written
    per case) loads to bit-identical logits.

Deterministic: fixed seeds and a single torch thread; re-running rewrites identical bytes
(for the same torch / transformers versions).

Usage:  ../venv-ref/bin/python tools/reference/make_family_fixtures.py [--out DIR] [--only CASE ...]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "test" / "fixtures" / "families"

BASE_SEED = 1234
SEQ_LENS = (20, 13, 5)

# Common tiny shape; a case may override any of these.
COMMON = dict(
    hidden_size=32,
    vocab_size=96,
    num_hidden_layers=2,
    intermediate_size=48,
    max_position_embeddings=128,
    num_attention_heads=4,
    num_key_value_heads=2,
)


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------
# Each case: model_type, config kwargs (passed to AutoConfig.for_model, legacy spellings such as
# rope_theta / rope_scaling are accepted there), features (human list), save options, and
# ablations: list of (description, change) where change is a dict of config overrides,
# {"config_fn": f(config) -> config}, or {"state_dict_fn": f(state_dict) -> state_dict}.
# An ablation must change the logits of the 20-token input, proving the fixture exercises it.


def _zero_qkv_bias(sd):
    sd = dict(sd)
    for k in list(sd):
        if any(k.endswith(f"self_attn.{p}_proj.bias") for p in ("q", "k", "v")):
            sd[k] = torch.zeros_like(sd[k])
    return sd


def _exact_gelu(cfg):
    # GemmaConfig maps the legacy value "gelu" to the tanh approximation, so set it after construction.
    cfg.hidden_act = "gelu_python"
    return cfg


def _unit_qk_norm(sd, gemma=False):
    sd = dict(sd)
    for k in list(sd):
        if k.endswith("self_attn.q_norm.weight") or k.endswith("self_attn.k_norm.weight"):
            sd[k] = torch.zeros_like(sd[k]) if gemma else torch.ones_like(sd[k])
    return sd


CASES = [
    dict(
        case="llama3-untied",
        model_type="llama",
        config=dict(
            num_hidden_layers=2,
            head_dim=8,
            tie_word_embeddings=False,
            rope_theta=500000.0,
            # original_max_position_embeddings=256 (with max_position_embeddings=1024) is chosen so that
            # with head_dim 8 / theta 5e5 the four rotary wavelengths (6.28, 167, 4443, 1.2e5 tokens)
            # hit all three llama3 branches: kept (< 256/4), smoothed (between 64 and 256), divided (> 256).
            max_position_embeddings=1024,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 256,
            },
        ),
        features=[
            "untied lm_head (separate lm_head.weight tensor)",
            "llama3 rope scaling: one frequency kept, one smoothed, two divided by factor",
            "rope_theta 500000",
            "GQA 4 query heads / 2 kv heads, head_dim 8",
        ],
        ablations=[
            ("rope_type default instead of llama3", {"rope_scaling": None, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}),
        ],
    ),
    dict(
        case="llama-bf16",
        model_type="llama",
        config=dict(num_hidden_layers=2, tie_word_embeddings=True),
        save_dtype=torch.bfloat16,
        features=[
            "weights stored as BF16 in safetensors (config dtype bfloat16)",
            "reference = float32 compute on the bf16-rounded weights",
            "tied embeddings (no lm_head.weight in the file)",
        ],
        ablations=[("weights not rounded to bf16", {"unrounded": True})],
    ),
    dict(
        case="llama-sharded",
        model_type="llama",
        config=dict(num_hidden_layers=2, tie_word_embeddings=False),
        max_shard_size="40KB",
        features=[
            "sharded checkpoint: model-0000N-of-0000M.safetensors + model.safetensors.index.json",
            "untied lm_head",
        ],
        ablations=[],
    ),
    dict(
        case="mistral-sliding",
        model_type="mistral",
        config=dict(num_hidden_layers=2, sliding_window=6, tie_word_embeddings=False),
        features=[
            "sliding-window attention on every layer (window 6 < 20-token input)",
            "mistral config field names",
        ],
        ablations=[
            ("sliding_window None", {"sliding_window": None}),
            ("sliding_window 5 (off-by-one)", {"sliding_window": 5}),
            ("sliding_window 7 (off-by-one)", {"sliding_window": 7}),
        ],
    ),
    dict(
        case="qwen2-bias",
        model_type="qwen2",
        config=dict(num_hidden_layers=2, tie_word_embeddings=True, use_sliding_window=False),
        features=[
            "q/k/v projection biases (random, nonzero); o_proj has no bias",
            "tied embeddings",
            "use_sliding_window false (sliding_window written as null, layer_types all full_attention)",
        ],
        ablations=[("q/k/v biases zeroed", {"state_dict_fn": _zero_qkv_bias})],
    ),
    dict(
        case="qwen3-qknorm",
        model_type="qwen3",
        config=dict(num_hidden_layers=2, head_dim=16, tie_word_embeddings=False),
        features=[
            "head_dim 16 != hidden_size/num_heads (8): q_proj out 64, o_proj in 64",
            "per-head RMSNorm on q and k (q_norm/k_norm, weight shape [head_dim]) before RoPE",
            "untied lm_head",
        ],
        ablations=[("q_norm/k_norm weights set to 1", {"state_dict_fn": _unit_qk_norm})],
    ),
    dict(
        case="gemma",
        model_type="gemma",
        config=dict(
            num_hidden_layers=2,
            head_dim=16,
            hidden_act="gelu_pytorch_tanh",
            hidden_activation="gelu_pytorch_tanh",
            tie_word_embeddings=True,
        ),
        features=[
            "RMSNorm with (1 + w) computed in float32",
            "embedding scaled by sqrt(hidden_size) (cast to the weight dtype)",
            "GeGLU MLP with tanh-approximated GELU",
            "head_dim 16 != hidden_size/num_heads",
            "tied embeddings",
        ],
        ablations=[("exact (erf) gelu instead of the tanh approximation", {"config_fn": _exact_gelu})],
    ),
    dict(
        case="gemma2-softcap",
        model_type="gemma2",
        config=dict(
            num_hidden_layers=3,
            head_dim=16,
            attn_logit_softcapping=5.0,
            final_logit_softcapping=3.0,
            query_pre_attn_scalar=24,
            sliding_window=6,
            tie_word_embeddings=True,
        ),
        features=[
            "attention logit softcapping 5.0 (tanh, before the mask)",
            "final logit softcapping 3.0",
            "attention scale query_pre_attn_scalar^-0.5 with query_pre_attn_scalar 24 (!= head_dim 16)",
            "alternating sliding (window 6) / full layers: layer_types [sliding, full, sliding]",
            "sandwich norms: post_attention_layernorm, pre/post_feedforward_layernorm, all (1 + w)",
            "embedding scaled by sqrt(hidden_size), tied embeddings",
        ],
        ablations=[
            ("attn_logit_softcapping None", {"attn_logit_softcapping": None}),
            ("final_logit_softcapping None", {"final_logit_softcapping": None}),
            ("sliding_window 4096", {"sliding_window": 4096}),
            ("sliding_window 5 (off-by-one)", {"sliding_window": 5}),
            ("sliding_window 7 (off-by-one)", {"sliding_window": 7}),
            ("query_pre_attn_scalar = head_dim", {"query_pre_attn_scalar": 16}),
        ],
    ),
    dict(
        case="gemma3-local-global",
        model_type="gemma3_text",
        config=dict(
            num_hidden_layers=4,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            sliding_window=6,
            rope_theta=1000000.0,
            rope_local_base_freq=10000.0,
            rope_scaling={"rope_type": "linear", "factor": 8.0},
            head_dim=16,
            query_pre_attn_scalar=16,
            tie_word_embeddings=True,
        ),
        features=[
            "local/global layers: layer_types [sliding, full, sliding, full], sliding window 6",
            "per-layer-type RoPE: sliding layers theta 10000 default; full layers theta 1e6 with linear factor 8",
            "per-head q_norm/k_norm ((1 + w) Gemma RMSNorm) before RoPE",
            "attention scale query_pre_attn_scalar^-0.5 (16)",
            "sandwich norms, embedding scaled by sqrt(hidden_size), tied embeddings",
        ],
        ablations=[
            ("sliding_window 4096", {"sliding_window": 4096}),
            ("sliding_window 5 (off-by-one)", {"sliding_window": 5}),
            ("sliding_window 7 (off-by-one)", {"sliding_window": 7}),
            (
                "full_attention rope without linear scaling",
                {
                    "rope_scaling": None,
                    "rope_parameters": {
                        "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                    }
                },
            ),
            (
                "sliding_attention rope theta 1e6 instead of 1e4",
                {
                    "rope_scaling": None,
                    "rope_parameters": {
                        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                    }
                },
            ),
            ("q_norm/k_norm weights set to 0 (i.e. scale 1)", {"state_dict_fn": lambda sd: _unit_qk_norm(sd, gemma=True)}),
        ],
    ),
]



# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def build_config(case: dict, overrides: dict | None = None):
    kw = dict(COMMON)
    kw.update(copy.deepcopy(case["config"]))
    if overrides:
        kw.update(copy.deepcopy(overrides))
    cfg = AutoConfig.for_model(case["model_type"], **kw)
    cfg._attn_implementation = "eager"
    return cfg


def new_model(cfg):
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    return model


def reinit_(model, seed: int) -> None:
    """Re-initialise every parameter (each shared/tied tensor once) deterministically."""
    gen = torch.Generator().manual_seed(seed)
    seen = set()
    with torch.no_grad():
        for name, p in model.named_parameters(remove_duplicate=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            scale = 1.0 if "embed_tokens" in name else 0.2
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * scale)


def make_inputs(seed: int, vocab: int):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (t,), generator=gen, dtype=torch.long) for t in SEQ_LENS]


@torch.no_grad()
def run_logits(model, inputs):
    outs = []
    for ids in inputs:
        out = model(input_ids=ids[None, :], use_cache=False)
        outs.append(out.logits[0].to(torch.float32).contiguous())
    return outs


def max_abs_diff(a_list, b_list) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(a_list, b_list))


def safetensors_header(path: Path) -> dict:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def is_tied(model) -> bool:
    return model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def llama3_branches(cfg) -> dict:
    """Which llama3 branch each rotary frequency falls into (recomputed independently here)."""
    rp = cfg.rope_parameters
    head_dim = cfg.head_dim
    inv = [1.0 / (rp["rope_theta"] ** (i / head_dim)) for i in range(0, head_dim, 2)]
    old = rp["original_max_position_embeddings"]
    low_w, high_w = old / rp["low_freq_factor"], old / rp["high_freq_factor"]
    out = []
    for f in inv:
        w = 2 * math.pi / f
        out.append("kept" if w < high_w else ("divided" if w > low_w else "smoothed"))
    return {"wavelengths": [round(2 * math.pi / f, 3) for f in inv], "branches": out}


def to_legacy_config(cfg_json: dict) -> dict:
    """The same config in the pre-v5 spelling that most Hub checkpoints still use:
    top-level rope_theta / rope_scaling (+ rope_local_base_freq for Gemma 3), torch_dtype,
    and no layer_types where the model can derive them."""
    d = copy.deepcopy(cfg_json)
    mt = d["model_type"]
    rp = d.pop("rope_parameters", None)
    if mt == "gemma3_text":
        full, slide = rp["full_attention"], rp["sliding_attention"]
        d["rope_theta"] = full["rope_theta"]
        d["rope_local_base_freq"] = slide["rope_theta"]
        scaling = {k: v for k, v in full.items() if k != "rope_theta"}
        d["rope_scaling"] = None if scaling.get("rope_type", "default") == "default" else scaling
        # Express the alternating pattern the old way (period 2: sliding, full, sliding, full).
        d.pop("layer_types", None)
        d.pop("_sliding_window_pattern", None)
        d["sliding_window_pattern"] = 2
    elif rp is not None:
        d["rope_theta"] = rp["rope_theta"]
        scaling = {k: v for k, v in rp.items() if k != "rope_theta"}
        d["rope_scaling"] = None if scaling.get("rope_type", "default") == "default" else scaling
    if mt in ("gemma2", "qwen2", "qwen3"):
        d.pop("layer_types", None)  # derived: gemma2 alternates (sliding first); qwen: all full here
    if "dtype" in d:
        d["torch_dtype"] = d.pop("dtype")
    return dict(sorted(d.items()))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Main per-case routine
# --------------------------------------------------------------------------------------------------


def make_case(idx: int, case: dict, out_root: Path) -> dict:
    name = case["case"]
    seed = BASE_SEED + 1000 * idx
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    cfg = build_config(case)
    model = new_model(cfg)
    reinit_(model, seed)
    vocab = cfg.vocab_size
    inputs = make_inputs(seed + 1, vocab)
    checks: dict = {}

    expect_tied = bool(cfg.tie_word_embeddings)
    assert is_tied(model) == expect_tied, f"{name}: tie state {is_tied(model)} != config {expect_tied}"

    save_dtype = case.get("save_dtype")
    state_dict_unrounded = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if save_dtype is not None:
        # Only parameters/persistent buffers go through the state dict; the (non-persistent) rotary
        # inv_freq buffers are not rounded, exactly as after a reload.
        model = model.to(save_dtype)
    # Reference logits of a fresh float32 model holding the (possibly bf16-rounded) weights.
    state_dict_fp32 = {k: v.detach().to(torch.float32).clone() for k, v in model.state_dict().items()}
    mem_model = new_model(build_config(case))
    mem_model.load_state_dict(state_dict_fp32, strict=True)
    mem_logits = run_logits(mem_model, inputs)
    del mem_model

    save_kwargs = dict(safe_serialization=True)
    if case.get("max_shard_size"):
        save_kwargs["max_shard_size"] = case["max_shard_size"]
    model.save_pretrained(out, **save_kwargs)
    gen_cfg = out / "generation_config.json"
    if gen_cfg.exists():
        gen_cfg.unlink()
    del model

    # ---- reload from disk, float32, eager -------------------------------------------------------
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
    reloaded.eval()
    assert reloaded.config._attn_implementation == "eager"
    assert is_tied(reloaded) == expect_tied
    logits = run_logits(reloaded, inputs)
    d = max_abs_diff(logits, mem_logits)
    checks["reload_matches_in_memory_max_abs_diff"] = d
    assert d == 0.0, f"{name}: reloaded logits differ from in-memory logits by {d}"

    # ---- on-disk format checks -------------------------------------------------------------------
    st_files = sorted(p.name for p in out.glob("*.safetensors"))
    dtypes = set()
    tensor_names = []
    for f in st_files:
        hdr = safetensors_header(out / f)
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            dtypes.add(v["dtype"])
            tensor_names.append(k)
    checks["safetensors_files"] = st_files
    checks["safetensors_dtypes"] = sorted(dtypes)
    checks["num_tensors"] = len(tensor_names)
    checks["has_lm_head_tensor"] = "lm_head.weight" in tensor_names
    assert checks["has_lm_head_tensor"] == (not expect_tied), f"{name}: lm_head presence vs tie mismatch"
    if save_dtype == torch.bfloat16:
        assert dtypes == {"BF16"}, f"{name}: expected BF16 tensors, got {dtypes}"
    else:
        assert dtypes == {"F32"}, f"{name}: expected F32 tensors, got {dtypes}"
    if case.get("max_shard_size"):
        assert (out / "model.safetensors.index.json").exists(), f"{name}: no index.json"
        assert 2 <= len(st_files) <= 3, f"{name}: expected 2-3 shards, got {st_files}"
    else:
        assert st_files == ["model.safetensors"], f"{name}: unexpected files {st_files}"

    # ---- feature-specific checks -----------------------------------------------------------------
    if case["model_type"] == "llama" and reloaded.config.rope_parameters.get("rope_type") == "llama3":
        br = llama3_branches(reloaded.config)
        checks["llama3_rope"] = br
        assert set(br["branches"]) == {"kept", "smoothed", "divided"}, f"{name}: llama3 branches {br}"
        default_inv = 1.0 / (500000.0 ** (torch.arange(0, 8, 2, dtype=torch.float) / 8))
        actual_inv = reloaded.model.rotary_emb.inv_freq
        changed = int((actual_inv != default_inv).sum())
        checks["llama3_rope"]["num_changed_inv_freq"] = changed
        checks["llama3_rope"]["inv_freq"] = [float(x) for x in actual_inv]
        assert changed >= 2, f"{name}: llama3 scaling changed only {changed} frequencies"

    ablation_results = []
    for desc, change in case.get("ablations", []):
        if change.get("unrounded"):
            acfg = build_config(case)
            sd = state_dict_unrounded
        elif "config_fn" in change:
            acfg = change["config_fn"](build_config(case))
            sd = state_dict_fp32
        elif "state_dict_fn" in change:
            acfg = build_config(case)
            sd = change["state_dict_fn"](state_dict_fp32)
        else:
            acfg = build_config(case, change)
            sd = state_dict_fp32
        amodel = new_model(acfg)
        amodel.load_state_dict(sd, strict=True)
        alog = run_logits(amodel, inputs[:1])
        diff = max_abs_diff(alog, logits[:1])
        ablation_results.append({"ablation": desc, "max_abs_logit_change_seq0": diff})
        assert diff > 1e-3, f"{name}: ablation '{desc}' did not change the logits ({diff})"
        del amodel
    checks["ablations"] = ablation_results

    # ---- legacy (pre-rope_parameters) spelling of the config must give identical logits ----------
    cfg_json = json.loads((out / "config.json").read_text())
    legacy = to_legacy_config(cfg_json)
    (out / "config.legacy.json").write_text(json.dumps(legacy, indent=2, sort_keys=True) + "\n")
    with tempfile.TemporaryDirectory() as td:
        tdp = Path(td)
        for p in out.iterdir():
            if p.name not in ("config.json", "config.legacy.json"):
                shutil.copy(p, tdp / p.name)
        (tdp / "config.json").write_text(json.dumps(legacy))
        lmodel = AutoModelForCausalLM.from_pretrained(tdp, dtype=torch.float32, attn_implementation="eager")
        lmodel.eval()
        llog = run_logits(lmodel, inputs)
        ld = max_abs_diff(llog, logits)
        checks["legacy_config_max_abs_diff"] = ld
        assert ld == 0.0, f"{name}: legacy config gives different logits ({ld})"
        if hasattr(reloaded.config, "layer_types"):
            assert lmodel.config.layer_types == reloaded.config.layer_types, f"{name}: legacy layer_types differ"
        del lmodel

    # ---- write logits + manifest -----------------------------------------------------------------
    entries = []
    max_abs = 0.0
    for i, (ids, lg) in enumerate(zip(inputs, logits)):
        arr = lg.numpy().astype("<f4", copy=False)
        assert arr.shape == (len(ids), vocab)
        assert np.isfinite(arr).all(), f"{name}: non-finite logits"
        max_abs = max(max_abs, float(np.abs(arr).max()))
        fname = f"logits_{i}.f32"
        (out / fname).write_bytes(np.ascontiguousarray(arr).tobytes())
        entries.append({"input_ids": [int(x) for x in ids], "logits_file": fname, "shape": [int(arr.shape[0]), int(arr.shape[1])]})

    golden = {
        "case": name,
        "model_type": case["model_type"],
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "features": case["features"],
        "weights_dtype_on_disk": sorted(dtypes),
        "max_abs_logit": max_abs,
        "inputs": entries,
        "checks": checks,
    }
    (out / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")

    layer_types = getattr(reloaded.config, "layer_types", None)
    log(
        f"[{name}] model_type={case['model_type']} files={st_files} dtypes={sorted(dtypes)} "
        f"max|logit|={max_abs:.4f} finite=yes"
        + (f" layer_types={layer_types}" if layer_types else "")
    )
    for a in ablation_results:
        log(f"    ablation '{a['ablation']}': max|dlogit| = {a['max_abs_logit_change_seq0']:.4f}")
    if "llama3_rope" in checks:
        log(f"    llama3 rope: {checks['llama3_rope']}")
    return golden


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", default=None, help="case names to (re)generate")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(BASE_SEED)
    transformers.logging.set_verbosity_error()

    log(f"transformers {transformers.__version__}, torch {torch.__version__}, out={args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    for idx, case in enumerate(CASES):
        if args.only and case["case"] not in args.only:
            continue
        make_case(idx, case, args.out)

    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    log(f"total fixture size under {args.out}: {total} bytes ({total / 1e6:.3f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

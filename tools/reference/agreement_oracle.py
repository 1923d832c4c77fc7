"""Agreement of a pruned model with its dense reference, computed with transformers, following
docs/agreement.md independently of the TypeScript code.

Greedy continuations use transformers' own forward with its key/value cache (argmax each step);
coinciding positions are found by comparing *decoded* prefixes (the TypeScript side compares
cumulative UTF-8 byte counts of the tokens), and KL is computed in float64 with torch.

Usage (from the repository root; the model is first pruned with the arguments recorded in the fixture):
  node bin/compact.js prune models/stories260K/hf -o .tmp/agreement-model <PRUNE_ARGS> --force
  ../venv-ref/bin/python tools/reference/agreement_oracle.py
"""
import argparse
import hashlib
import json
import os
import re
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
PRUNE_ARGS = ["--vocab", "480", "--ffn", "164", "--no-compensate", "--calib", "data/tinystories/calibration_90pct.txt", "--samples", "16", "--seq-len", "128", "--seed", "3"]


def paragraphs_of(text: str, count: int) -> list[str]:
    parts = [p.strip() for p in re.split(r"\n[ \t]*\n", text)]
    return [p for p in parts if p][:count]


def prompt_of(paragraph: str) -> str | None:
    limit = min(128, len(paragraph) // 2)
    cut = paragraph.rfind(" ", 0, limit + 1)
    return paragraph[:cut] if cut > 0 else None


def greedy(model, tok, prompt: str, chars: int) -> str:
    ids = tok(prompt)["input_ids"]
    prompt_text = tok.decode(ids, skip_special_tokens=True)
    special = set(tok.all_special_ids)
    generated: list[int] = []
    past = None
    inputs = torch.tensor([ids])
    with torch.no_grad():
        while True:
            out = model(input_ids=inputs, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = int(torch.argmax(out.logits[0, -1]))
            generated.append(nxt)
            cont = tok.decode(ids + generated, skip_special_tokens=True)[len(prompt_text):]
            if len(generated) >= chars or nxt in special or len(cont) >= chars:
                return cont[:chars]
            inputs = torch.tensor([[nxt]])


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].double()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default="models/stories260K/hf")
    ap.add_argument("--model", default=".tmp/agreement-model")
    ap.add_argument("--text", default="data/tinystories/heldout_10pct.txt")
    ap.add_argument("--paragraphs", type=int, default=24)
    ap.add_argument("--continuation", type=int, default=48)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--out", default="test/fixtures/agreement/oracle-stories260K.json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    ref_dir, model_dir = ROOT / args.reference, ROOT / args.model
    ref_tok, model_tok = AutoTokenizer.from_pretrained(ref_dir), AutoTokenizer.from_pretrained(model_dir)
    ref = AutoModelForCausalLM.from_pretrained(ref_dir, torch_dtype=torch.float32).eval()
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    text = (ROOT / args.text).read_text(encoding="utf-8")
    paragraphs = paragraphs_of(text, args.paragraphs)

    prompts = [p for p in map(prompt_of, paragraphs) if p is not None]
    pairs = [{"prompt": p, "reference": greedy(ref, ref_tok, p, args.continuation), "model": greedy(model, model_tok, p, args.continuation)} for p in prompts]
    scores = [1.0 if a["reference"] == a["model"] else len(os.path.commonprefix([a["reference"], a["model"]])) / args.continuation for a in pairs]

    # Model id → reference id of the same token string.
    ref_vocab = ref_tok.get_vocab()
    model_tokens = model_tok.convert_ids_to_tokens(list(range(len(model_tok))))
    vm, vr = model.config.vocab_size, ref.config.vocab_size
    model_to_ref = torch.full((vm,), -1, dtype=torch.long)
    for m, s in enumerate(model_tokens):
        if m < vm and s in ref_vocab and ref_vocab[s] < vr:
            model_to_ref[m] = ref_vocab[s]
    mapped = model_to_ref >= 0
    ref_special, model_special = set(ref_tok.all_special_ids), set(model_tok.all_special_ids)

    reference_positions = compared = 0
    kl_sum = outside_sum = 0.0
    same_top1 = 0
    for paragraph in paragraphs:
        r = ref_tok(paragraph)["input_ids"][: args.window]
        m = model_tok(paragraph)["input_ids"][: args.window]
        lr, lm = logits_of(ref, r), logits_of(model, m)
        # Model positions by decoded prefix text.
        by_prefix: dict[str, list[int]] = {}
        for j in range(1, len(m)):
            by_prefix.setdefault(model_tok.decode(m[:j], skip_special_tokens=True), []).append(j)
        for i in range(1, len(r)):
            if r[i] in ref_special:
                continue
            reference_positions += 1
            token = ref_tok.convert_ids_to_tokens(r[i])
            js = [j for j in by_prefix.get(ref_tok.decode(r[:i], skip_special_tokens=True), []) if m[j] not in model_special and model_tokens[m[j]] == token]
            if not js:
                continue
            j = js[-1]
            p = torch.softmax(lr[i - 1], -1)
            covered = torch.zeros(vr, dtype=torch.bool)
            covered[model_to_ref[mapped]] = True
            inside = p[covered].sum()
            p_tilde = p[model_to_ref[mapped]] / inside
            log_q = torch.log_softmax(lm[j - 1][mapped], -1)
            kl_sum += float((p_tilde * (torch.log(p_tilde) - log_q)).sum())
            same_top1 += int(torch.argmax(p_tilde) == torch.argmax(log_q))  # over the mapped model ids, first on ties
            outside_sum += float(p[~covered].sum())
            compared += 1

    weights = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(model_dir.glob("*.safetensors"))}
    result = {
        "generated_by": "tools/reference/agreement_oracle.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "reference": args.reference,
        "prune_args": PRUNE_ARGS,
        "model_weights_sha256": weights,
        "text": args.text,
        "paragraphs": len(paragraphs),
        "continuation": args.continuation,
        "window": args.window,
        "greedy": {"pairs": pairs, "mean_agreement": sum(scores) / len(scores), "exact": sum(1 for a in pairs if a["reference"] == a["model"])},
        "kl": {"reference_positions": reference_positions, "compared_positions": compared, "mean_kl": kl_sum / compared, "top1_agreement": same_top1 / compared, "mean_reference_mass_outside": outside_sum / compared},
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: agreement {result['greedy']['mean_agreement']:.4f}, KL {result['kl']['mean_kl']:.5f} over {compared}/{reference_positions} positions")


if __name__ == "__main__":
    main()

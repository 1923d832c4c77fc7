#!/usr/bin/env python3
"""Independent oracle for `compact eval --tasks`: zero-shot task scores of a Hugging Face model with
LM-Evaluation-Harness's definitions, computed with transformers + torch (no TypeScript involved).

lm-eval itself is not installed here, so this script re-states, from reading lm-eval's sources,
what its task configs and HF causal-LM wrapper do:

  * task configs (lm_eval/tasks/...): arc/arc_easy.yaml + arc_challenge.yaml, piqa/piqa.yaml,
    hellaswag/hellaswag.yaml + utils.py, winogrande/default.yaml + preprocess_winogrande.py,
    super_glue/boolq/default.yaml, openbookqa/openbookqa.yaml, lambada/lambada_openai.yaml;
  * requests (lm_eval/api/task.py ConfigurableTask.construct_requests): for multiple choice,
    (context, target_delimiter + choice) per choice, target_delimiter " "; for "multiple input"
    tasks (WinoGrande) (choice-as-context, " " + target) per choice; for loglikelihood tasks
    (context, doc_to_target);
  * encoding (lm_eval/api/model.py TemplateLM._encode_pair): trailing whitespace of the context
    moves to the continuation; whole = tok(context + continuation), ctx = tok(context),
    continuation = whole[len(ctx):]; special tokens as the tokenizer adds them by default;
  * scoring (lm_eval/models/huggingface.py HFLM._loglikelihood_tokens): the model reads
    (ctx + cont)[-(max_length + 1):][:-1]; log_softmax over the vocabulary; the last len(cont)
    positions are the continuation's; ll = sum of log p, greedy = argmax equals cont everywhere;
  * metrics (lm_eval/api/task.py process_results, lm_eval/api/metrics.py): acc = argmax(ll) is gold;
    acc_norm = argmax(ll / len(choice)) (characters, Python len); acc_bytes = the same with UTF-8
    bytes; perplexity = exp(-mean ll); stderr = sample stdev / sqrt(n).

Data: the fixture slices in test/fixtures/tasks (same layouts as shared/data; see its README).
Output: test/fixtures/tasks/oracle-stories260K.json (per document and request: context token
count, continuation ids, log-likelihood, greedy flag; per task: acc, acc_norm, ...).

Usage, from the repository root:
    ../venv-ref/bin/python tools/reference/task_oracle.py [--model models/stories260K/hf]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "test" / "fixtures" / "tasks"
OUT = DATA / "oracle-stories260K.json"


# ---------------------------------------------------------------- task definitions (lm-eval)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def arc_docs(file: str):
    for d in jsonl(DATA / "arc" / file):
        yield {
            "text": "Question: " + d["question"] + "\nAnswer:",
            "choices": d["choices"]["text"],
            "gold": d["choices"]["label"].index(d["answerKey"]),
        }


def piqa_docs():
    labels = [line for line in (DATA / "piqa" / "valid-labels.lst").read_text().splitlines() if line.strip()]
    for d, label in zip(jsonl(DATA / "piqa" / "valid.jsonl"), labels, strict=True):
        yield {"text": "Question: " + d["goal"] + "\nAnswer:", "choices": [d["sol1"], d["sol2"]], "gold": int(label)}


def hellaswag_preprocess(text: str) -> str:
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def hellaswag_docs():
    # llama.cpp layout: "<activity_label>: <ctx>", gold, 4 endings. lm-eval's process_docs builds the
    # query from activity_label, ctx_a and ctx_b.capitalize(); this layout only has ctx = ctx_a + " " + ctx_b,
    # so the capitalisation cannot be redone; preprocess() is applied to what there is.
    lines = (DATA / "hellaswag" / "hellaswag_val_full.txt").read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    for i in range(0, len(lines), 6):
        yield {
            "text": hellaswag_preprocess(lines[i]),
            "choices": [hellaswag_preprocess(e) for e in lines[i + 2 : i + 6]],
            "gold": int(lines[i + 1]),
        }


def winogrande_docs():
    for d in jsonl(DATA / "winogrande" / "winogrande_dev.jsonl"):
        idx = d["sentence"].index("_")
        contexts = [d["sentence"][:idx] + o for o in (d["option1"], d["option2"])]
        target = d["sentence"][idx + 1 :].strip()
        yield {"contexts": contexts, "target": target, "choices": contexts, "gold": {"1": 0, "2": 1}[d["answer"]]}


def boolq_docs():
    with open(DATA / "boolq" / "boolq_validation.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield {"text": row["passage"] + "\nQuestion: " + row["question"] + "?\nAnswer:", "choices": ["no", "yes"], "gold": int(row["label"])}


def openbookqa_docs():
    with open(DATA / "openbookqa" / "test.tsv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            m = re.fullmatch(r"\(A\) (.*) \(B\) (.*) \(C\) (.*) \(D\) (.*)", row["Choices"], re.S)
            yield {"text": row["Question Stem"], "choices": list(m.groups()), "gold": "ABCD".index(row["Answer Key"].lstrip())}


def lambada_docs():
    for d in jsonl(DATA / "lambada" / "lambada_test.jsonl"):
        words = d["text"].split(" ")
        yield {"text": " ".join(words[:-1]), "target": " " + words[-1]}


def mc_docs():
    for d in jsonl(DATA / "mc" / "questions.jsonl"):
        yield {"text": d["context"], "choices": d["choices"], "gold": d["gold"]}


TASKS = {
    # name: (documents, kind, metrics)
    "arc_easy": (lambda: arc_docs("ARC-Easy-test.jsonl"), "mc", ["acc", "acc_norm"]),
    "arc_challenge": (lambda: arc_docs("ARC-Challenge-test.jsonl"), "mc", ["acc", "acc_norm"]),
    "piqa": (piqa_docs, "mc", ["acc", "acc_norm"]),
    "hellaswag": (hellaswag_docs, "mc", ["acc", "acc_norm"]),
    "winogrande": (winogrande_docs, "multiple_input", ["acc"]),
    "boolq": (boolq_docs, "mc", ["acc"]),
    "openbookqa": (openbookqa_docs, "mc", ["acc", "acc_norm"]),
    "lambada_openai": (lambda: lambada_docs(), "loglikelihood", ["perplexity", "acc"]),
    "mc:test/fixtures/tasks/mc/questions.jsonl": (mc_docs, "mc", ["acc", "acc_norm"]),
}


def requests_of(doc: dict, kind: str) -> list[tuple[str, str]]:
    if kind == "mc":
        return [(doc["text"], " " + c) for c in doc["choices"]]
    if kind == "multiple_input":
        return [(c, " " + doc["target"]) for c in doc["contexts"]]
    return [(doc["text"], doc["target"])]


# ---------------------------------------------------------------- the HF model, as HFLM uses it


class Scorer:
    def __init__(self, model_dir: Path):
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.rust = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
        cfg = self.model.config
        self.max_length = next(int(getattr(cfg, a)) for a in ("n_positions", "max_position_embeddings", "n_ctx") if getattr(cfg, a, None) is not None)
        self.mismatches: list[str] = []

    def encode(self, text: str) -> list[int]:
        ids = self.tok.encode(text)
        rust = self.rust.encode(text).ids
        if ids != rust:
            self.mismatches.append(text)
        return ids

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]

    @torch.no_grad()
    def loglikelihood(self, context: str, continuation: str) -> dict:
        ctx, cont = self.encode_pair(context, continuation)
        assert len(ctx) > 0 and 0 < len(cont) <= self.max_length
        full = ctx + cont
        inp = full[-(self.max_length + 1) :][:-1]
        logprobs = torch.log_softmax(self.model(torch.tensor([inp])).logits[0].float(), dim=-1)  # [T, V]
        picked = logprobs[len(inp) - len(cont) :]  # [len(cont), V]
        target = torch.tensor(cont)
        greedy = bool((picked.argmax(dim=-1) == target).all())
        per_token = picked.gather(1, target[:, None])[:, 0]
        return {
            "context_tokens": len(ctx),
            "continuation": cont,
            "truncated": len(full) > self.max_length + 1,
            "ll": float(per_token.double().sum()),
            "greedy": greedy,
        }


def stderr(xs: list[float]) -> float:
    n = len(xs)
    mu = sum(xs) / n
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1)) / math.sqrt(n)


def argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/stories260K/hf")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.set_num_threads(1)
    scorer = Scorer(ROOT / args.model)
    out = {
        "model": args.model,
        "max_length": scorer.max_length,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tasks": {},
    }
    for name, (docs_fn, kind, metrics) in TASKS.items():
        docs = []
        for doc in docs_fn():
            reqs = [scorer.loglikelihood(c, t) for c, t in requests_of(doc, kind)]
            entry = {"requests": reqs}
            if kind != "loglikelihood":
                lls = [r["ll"] for r in reqs]
                choices = doc["choices"]
                gold = doc["gold"]
                entry.update(
                    gold=gold,
                    acc=float(argmax(lls) == gold),
                    acc_norm=float(argmax([ll / len(c) for ll, c in zip(lls, choices)]) == gold),
                    acc_bytes=float(argmax([ll / len(c.encode("utf-8")) for ll, c in zip(lls, choices)]) == gold),
                )
            docs.append(entry)
        summary: dict = {"n": len(docs)}
        if kind == "loglikelihood":
            lls = [d["requests"][0]["ll"] for d in docs]
            accs = [float(d["requests"][0]["greedy"]) for d in docs]
            summary.update(perplexity=math.exp(-sum(lls) / len(lls)), acc=sum(accs) / len(accs), acc_stderr=stderr(accs))
        else:
            for metric in ["acc", "acc_norm", "acc_bytes"] if "acc_norm" in metrics else ["acc"]:
                xs = [d[metric] for d in docs]
                summary[metric] = sum(xs) / len(xs)
                summary[metric + "_stderr"] = stderr(xs)
        out["tasks"][name] = {**summary, "docs": docs}
        print(f"{name:45s} n={len(docs):3d} " + " ".join(f"{k}={v:.4f}" for k, v in summary.items() if k != "n"), file=sys.stderr)
    if scorer.mismatches:
        print(f"note: transformers' tokenizer and tokenizer.json (Rust) disagree on {len(scorer.mismatches)} strings, e.g. {scorer.mismatches[0]!r}", file=sys.stderr)
    out["tokenizer_mismatches"] = len(scorer.mismatches)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

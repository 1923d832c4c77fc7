#!/usr/bin/env python3
"""Independent oracle for `compact eval --tasks … --num-fewshot K`: MMLU (0- and 5-shot), GSM8K
(5-shot generation) and LAMBADA (2-shot, shots drawn from the evaluated split) on a Hugging Face
model with LM-Evaluation-Harness 0.4.13's definitions, computed with transformers + torch and
Python's own `random` (no TypeScript involved).

What it re-states from lm-eval's sources (lm_eval/api/task.py fewshot_context / build_qa_turn /
construct_requests, lm_eval/api/samplers.py, lm_eval/models/huggingface.py generate_until,
lm_eval/filters/extraction.py, lm_eval/api/metrics.py, lm_eval/api/group.py and the task YAMLs
mmlu/default/*, gsm8k/gsm8k.yaml, lambada/lambada_openai.yaml):

  * context = description + Σ shots (q + target_delimiter + answer + fewshot_delimiter) + q;
  * samplers: one random.Random(1234) per task, drawn in document order; default = rnd.sample(pool, n)
    (with the evaluated document to exclude: sample n + 1, drop it, keep n); first_n = pool[:n].
    With --lm-eval-wheel, the samplers are lm-eval's own code (samplers.py read from the wheel);
  * multiple choice: (context, " " + choice), log-likelihood as task_oracle.py (HFLM's
    _encode_pair and left truncation to max_length);
  * generate_until: context encoded with the tokenizer's defaults, left-truncated to
    max_length - max_gen_toks (256), greedy `generate` (eos from generation_config) stopping
    when a stop string shows, continuation decoded with special tokens skipped and cut at each
    stop string; regex filters (strict-match, flexible-extract) + take_first; exact_match with
    regexes_to_ignore and ignore_case (Python `re`);
  * group acc weighted by size, stderr pooled (pooled_sample_stderr).

Data: test/fixtures/tasks (mmlu/, gsm8k/, lambada/: see its README). Output:
test/fixtures/tasks/oracle-fewshot-stories260K.json, and with --model/--out the same for
tinystories-llama32k (oracle-fewshot-llama32k.json; the weights' sha256 is recorded so the test
can tell whether the checkpoint it finds is the one the oracle ran).

Usage, from the repository root:
    python3 tools/reference/make_fewshot_fixtures.py        # (re)copy the slices from ../shared/data
    ../venv-ref/bin/python tools/reference/fewshot_oracle.py \
        [--lm-eval-wheel /opt/pypi-more/files/lm_eval-0.4.13-py3-none-any.whl]
    ../venv-ref/bin/python tools/reference/fewshot_oracle.py --lm-eval-wheel … \
        --model ../shared/models/tinystories-llama32k/hf --out test/fixtures/tasks/oracle-fewshot-llama32k.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import math
import random
import re
import sys
import zipfile
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "test" / "fixtures" / "tasks"
OUT = DATA / "oracle-fewshot-stories260K.json"
MMLU_SUBJECTS = ["abstract_algebra", "global_facts", "machine_learning"]
SEED = 1234


def sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- samplers


class OwnSamplers:
    """lm-eval 0.4.13's ContextSampler / FirstNSampler, re-stated."""

    class Default:
        def __init__(self, df, rnd):
            self.df, self.rnd = list(df), random.Random(rnd)

        def sample(self, n, eval_doc=None):
            if n == 0:
                return []
            if eval_doc is None:
                res = self.rnd.sample(self.df, n)
            else:
                res = [x for x in self.rnd.sample(self.df, n + 1) if x != eval_doc][:n]
            if len(res) < n:
                res = self.rnd.sample([x for x in self.df if x != eval_doc], n)
            return res

    class FirstN:
        def __init__(self, df, rnd):
            self.df = list(df)

        def sample(self, n, eval_doc=None):
            pool = [x for x in self.df if x != eval_doc] if eval_doc is not None else self.df
            assert n <= len(pool)
            return pool[:n]


def lm_eval_samplers(wheel: str):
    """lm-eval's own samplers.py, loaded from the wheel (it imports only the standard library)."""
    with zipfile.ZipFile(wheel) as z:
        source = z.read("lm_eval/api/samplers.py").decode()
    spec = importlib.util.spec_from_loader("lm_eval_samplers", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, "lm_eval/api/samplers.py", "exec"), module.__dict__)

    class Wrap:
        class Default:
            def __init__(self, df, rnd):
                self.s = module.ContextSampler(list(df), rnd=rnd)

            def sample(self, n, eval_doc=None):
                return list(self.s.sample(n, eval_doc=eval_doc))

        class FirstN:
            def __init__(self, df, rnd):
                self.s = module.FirstNSampler(list(df), rnd=rnd)

            def sample(self, n, eval_doc=None):
                return list(self.s.sample(n, eval_doc=eval_doc))

    return Wrap


# ---------------------------------------------------------------- data (same files the tests read)


def mmlu_rows(subject: str, split: str) -> list[dict]:
    with open(DATA / "mmlu" / split / f"{subject}_{split}.csv", newline="", encoding="utf-8") as f:
        return [{"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in csv.reader(f)]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mmlu_text(d: dict) -> str:
    c = d["choices"]
    return f"{d['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"


def fewshot_context(description: str, shots: list[tuple[str, str]], q: str, tgt=" ", fewdelim="\n\n") -> str:
    return description + "".join(sq + tgt + sa + fewdelim for sq, sa in shots) + q


# ---------------------------------------------------------------- the model


class StopOnStrings(StoppingCriteria):
    def __init__(self, tok, stops, prompt_len):
        self.tok, self.stops, self.prompt_len = tok, stops, prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        text = self.tok.decode(input_ids[0, self.prompt_len :], skip_special_tokens=True)
        return any(s in text for s in self.stops)


class Model:
    def __init__(self, model_dir: Path):
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
        cfg = self.model.config
        self.max_length = next(int(getattr(cfg, a)) for a in ("n_positions", "max_position_embeddings", "n_ctx") if getattr(cfg, a, None) is not None)

    def encode(self, s: str) -> list[int]:
        return self.tok.encode(s)

    @torch.no_grad()
    def loglikelihood(self, context: str, continuation: str) -> dict:
        n = len(context) - len(context.rstrip())
        if n > 0:
            continuation, context = context[-n:] + continuation, context[:-n]
        whole, ctx = self.encode(context + continuation), self.encode(context)
        cont = whole[len(ctx) :]
        full = ctx + cont
        inp = full[-(self.max_length + 1) :][:-1]
        logprobs = torch.log_softmax(self.model(torch.tensor([inp])).logits[0].float(), dim=-1)
        picked = logprobs[len(inp) - len(cont) :]
        target = torch.tensor(cont)
        return {
            "context_tokens": len(ctx),
            "continuation": cont,
            "truncated": len(full) > self.max_length + 1,
            "ll": float(picked.gather(1, target[:, None])[:, 0].double().sum()),
            "greedy": bool((picked.argmax(dim=-1) == target).all()),
        }

    @torch.no_grad()
    def generate_until(self, context: str, until: list[str], max_gen_toks: int) -> dict:
        eos_text = self.tok.decode(self.tok.eos_token_id, skip_special_tokens=False)
        stops = until + ([eos_text] if eos_text not in until else [])
        ids = self.encode(context)
        max_ctx = self.max_length - max_gen_toks
        prompt = ids[-max_ctx:]
        inp = torch.tensor([prompt])
        out = self.model.generate(
            input_ids=inp,
            attention_mask=torch.ones_like(inp),
            max_length=len(prompt) + max_gen_toks,
            do_sample=False,
            stopping_criteria=StoppingCriteriaList([StopOnStrings(self.tok, stops, len(prompt))]),
            pad_token_id=self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id,
        )
        generated = out[0, len(prompt) :].tolist()
        text = self.tok.decode(generated, skip_special_tokens=True)
        for term in stops:
            if term:
                text = text.split(term)[0]
        return {"prompt_tokens": len(prompt), "truncated": len(prompt) < len(ids), "generated_ids": generated, "text": text}


# ---------------------------------------------------------------- metrics


def stderr(xs: list[float]):
    n = len(xs)
    if n < 2:
        return None
    mu = sum(xs) / n
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1)) / math.sqrt(n)


def pooled(stderrs, sizes):
    var = sum((n - 1) * s**2 * n for n, s in zip(sizes, stderrs)) / (sum(sizes) - len(sizes))
    return math.sqrt(var / sum(sizes))


def argmax(xs):
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def regex_filter(resp: str, pattern: str, group_select: int, fallback="[invalid]") -> str:
    match = re.compile(pattern).findall(resp)
    if match:
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m]
            match = match[0] if match else fallback
        return match.strip()
    return fallback


def exact_match(pred: str, ref: str) -> float:
    for s in [",", "\\$", "(?s).*#### ", "\\.$"]:
        pred, ref = re.sub(s, "", pred), re.sub(s, "", ref)
    return float(pred.lower() == ref.lower())


# ---------------------------------------------------------------- tasks


def run_mmlu(model: Model, samplers, shots: int) -> dict:
    out = {}
    for subject in MMLU_SUBJECTS:
        description = f"The following are multiple choice questions (with answers) about {' '.join(subject.split('_'))}.\n\n"
        dev = mmlu_rows(subject, "dev")
        sampler = samplers.FirstN(dev, SEED)
        docs = []
        for i, d in enumerate(mmlu_rows(subject, "test")):
            fs = sampler.sample(shots, eval_doc=None)  # fewshot_split dev != test_split test
            ctx = fewshot_context(description, [(mmlu_text(x), "ABCD"[x["answer"]]) for x in fs], mmlu_text(d))
            reqs = [model.loglikelihood(ctx, " " + c) for c in "ABCD"]
            lls = [r["ll"] for r in reqs]
            docs.append({"prompt_sha256": sha(ctx), "prompt_chars": len(ctx), "requests": reqs, "gold": d["answer"], "acc": float(argmax(lls) == d["answer"])})
            if i == 0:
                docs[-1]["prompt"] = ctx
        accs = [x["acc"] for x in docs]
        out[f"mmlu_{subject}"] = {"n": len(docs), "acc": sum(accs) / len(accs), "acc_stderr": stderr(accs), "docs": docs}
        print(f"mmlu_{subject} {shots}-shot acc={out[f'mmlu_{subject}']['acc']:.4f}", file=sys.stderr)
    sizes = [t["n"] for t in out.values()]
    group = {
        "n": sum(sizes),
        "acc": sum(t["acc"] * t["n"] for t in out.values()) / sum(sizes),
        "acc_stderr": pooled([t["acc_stderr"] for t in out.values()], sizes),
    }
    return {"tasks": out, "group": group}


def run_gsm8k(model: Model, samplers, shots: int) -> dict:
    train = jsonl(DATA / "gsm8k" / "train.jsonl")
    sampler = samplers.Default(train, SEED)
    index = {json.dumps(d, sort_keys=True): i for i, d in enumerate(train)}
    docs = []
    for d in jsonl(DATA / "gsm8k" / "test.jsonl"):
        fs = sampler.sample(shots, eval_doc=None)  # fewshot_split train != test_split test
        ctx = fewshot_context("", [(f"Question: {x['question']}\nAnswer:", x["answer"]) for x in fs], f"Question: {d['question']}\nAnswer:")
        g = model.generate_until(ctx, ["Question:", "</s>", "<|im_end|>"], 256)
        strict = regex_filter(g["text"], r"#### (\-?[0-9\.\,]+)", 0)
        flexible = regex_filter(g["text"], r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)
        docs.append(
            {
                "shots": [index[json.dumps(x, sort_keys=True)] for x in fs],
                "prompt_sha256": sha(ctx),
                "prompt_chars": len(ctx),
                **g,
                "filtered": {"strict-match": strict, "flexible-extract": flexible},
                "exact_match": {"strict-match": exact_match(strict, d["answer"]), "flexible-extract": exact_match(flexible, d["answer"])},
            }
        )
        print(f"gsm8k doc {len(docs)}: {g['prompt_tokens']} prompt tokens, {len(g['generated_ids'])} generated", file=sys.stderr)
    metrics = {}
    for f in ("strict-match", "flexible-extract"):
        xs = [x["exact_match"][f] for x in docs]
        metrics[f] = {"value": sum(xs) / len(xs), "stderr": stderr(xs)}
    return {"n": len(docs), "exact_match": metrics, "docs": docs}


def run_lambada(model: Model, samplers, shots: int, limit: int) -> dict:
    # No training/validation split: shots come from the test split; fewshot_split None != test_split "test",
    # so the evaluated document is not excluded. lambada's target " word" after target_delimiter " ".
    pool = jsonl(DATA / "lambada" / "lambada_test.jsonl")
    sampler = samplers.Default(pool, SEED)
    text = lambda d: " ".join(d["text"].split(" ")[:-1])
    target = lambda d: " " + d["text"].split(" ")[-1]
    docs = []
    for i, d in enumerate(pool[:limit]):
        fs = sampler.sample(shots, eval_doc=None)
        ctx = fewshot_context("", [(text(x), target(x)) for x in fs], text(d))
        r = model.loglikelihood(ctx, target(d))
        docs.append({"shots": [pool.index(x) for x in fs], "prompt_sha256": sha(ctx), "request": r})
    return {"n": len(docs), "docs": docs}


def sampler_cases(samplers) -> list[dict]:
    """The default sampler with an evaluated document to exclude (duplicates included), on small pools."""
    cases = []
    for pool_keys, n, eval_key, draws in [
        (list(range(30)), 5, 7, 6),
        (list(range(8)), 3, 2, 5),
        ([0, 1, 2, 3, 3, 3, 4], 3, 3, 6),  # the document appears three times: the resampling path
        (list(range(200)), 6, 5, 4),
    ]:
        pool = [{"k": k} for k in pool_keys]
        s = samplers.Default(pool, SEED)
        picks = []
        for _ in range(draws):
            res = s.sample(n, eval_doc={"k": eval_key})
            picks.append([next(i for i, p in enumerate(pool) if p is x) for x in res])
        cases.append({"pool": pool_keys, "n": n, "exclude": eval_key, "picks": picks})
    return cases


GENERATION_CASES = [
    # (context, until, max_gen_toks): stop strings the story model does produce, and a run to its EOS.
    ("Once upon a time", ["."], 64),
    ("Once upon a time, there was a little girl named", ["Lily", "\n"], 64),
    ("Tom and Sue played in the park all day. They were very happy. The end.", [], 300),
    ("One day, a cat said \"Hello!\"", ["\""], 32),
]

FILTER_CASES = [
    # responses for gsm8k's filters and exact_match against a reference
    ("She pays 5 + 4 = <<5+4=9>>9.\n#### 9", "#### 9"),
    ("The total is $1,234.\n#### 1,234.", "x\n#### 1234"),
    ("It is 18.\n\n", "#### 18"),
    ("#### -3.5 and then #### 7", "#### -3.5"),
    ("no number here", "#### 4"),
    ("$ 12 dollars, or 12.00", "#### 12.00"),
    ("The answer is 42.\n", "#### 42"),
    ("   #### 8\n", "#### 8"),
    ("Answer: 1.5, 2.5, -7", "#### -7"),
    ("#### ABC", "#### abc"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/stories260K/hf")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--lm-eval-wheel", default=None, help="use lm-eval's own samplers.py from this wheel")
    args = parser.parse_args()
    torch.set_num_threads(1)
    samplers = lm_eval_samplers(args.lm_eval_wheel) if args.lm_eval_wheel else OwnSamplers
    # Cross-check: lm-eval's samplers (when given) and the re-statement draw the same.
    if args.lm_eval_wheel:
        assert sampler_cases(samplers) == sampler_cases(OwnSamplers), "lm-eval's samplers and the re-statement differ"
    model = Model(ROOT / args.model)
    out = {
        "model": args.model,
        "weights_sha256": hashlib.sha256((ROOT / args.model / "model.safetensors").read_bytes()).hexdigest(),
        "max_length": model.max_length,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "samplers": "lm-eval 0.4.13 samplers.py" if args.lm_eval_wheel else "re-stated",
        "mmlu": {"0": run_mmlu(model, samplers, 0), "5": run_mmlu(model, samplers, 5)},
        "gsm8k": run_gsm8k(model, samplers, 5),
        "lambada_openai": run_lambada(model, samplers, 2, 10),
        "sampler_cases": sampler_cases(samplers),
        "generation_cases": [{"context": c, "until": u, "max_gen_toks": m, **model.generate_until(c, u, m)} for c, u, m in GENERATION_CASES],
        "filter_cases": [
            {
                "response": r,
                "reference": ref,
                "strict-match": regex_filter(r, r"#### (\-?[0-9\.\,]+)", 0),
                "flexible-extract": regex_filter(r, r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1),
                "exact_match": {
                    "strict-match": exact_match(regex_filter(r, r"#### (\-?[0-9\.\,]+)", 0), ref),
                    "flexible-extract": exact_match(regex_filter(r, r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1), ref),
                    "raw": exact_match(r, ref),
                },
            }
            for r, ref in FILTER_CASES
        ],
    }
    for case in out["generation_cases"]:
        print(f"generation case {case['context'][:30]!r}: {len(case['generated_ids'])} tokens, {case['text']!r}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

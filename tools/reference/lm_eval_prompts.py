#!/usr/bin/env python3
"""Cross-check of the few-shot oracle with lm-eval 0.4.13 itself: builds the MMLU (0/5-shot),
GSM8K (5-shot) and LAMBADA (2-shot) prompts with lm-eval's own ConfigurableTask (its YAML task
files, `fewshot_context`, its samplers seeded as the evaluator seeds them) over the fixture slices,
and runs its RegexFilters and exact_match on the oracle's generations and crafted responses; asserts
that everything equals test/fixtures/tasks/oracle-fewshot-stories260K.json.

lm-eval is installed from its wheel with --no-deps plus `datasets`, `jinja2`, `more_itertools`,
`dill` (modules it imports but these tasks never use — sacrebleu, sqlitedict, evaluate,
scikit-learn, … — are stubbed):

    PIP_CONFIG_FILE=/dev/null ../venv-ref/bin/pip install --index-url file:///opt/pypi/simple \\
      --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels --no-deps \\
      /opt/pypi-more/files/lm_eval-0.4.13-py3-none-any.whl
    PIP_CONFIG_FILE=/dev/null ../venv-ref/bin/pip install --index-url file:///opt/pypi/simple \\
      --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels datasets jinja2 more_itertools dill
    ../venv-ref/bin/python tools/reference/lm_eval_prompts.py
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import types
from pathlib import Path


# The oracle's data readers (this imports torch: before any stub below is in place).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot_oracle import DATA, MMLU_SUBJECTS, OUT, jsonl, mmlu_rows  # noqa: E402


def stub(name: str) -> None:
    try:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            return
    except ValueError:
        pass
    sys.modules[name] = types.ModuleType(name)


for _name in ["sacrebleu", "sqlitedict", "evaluate", "word2number", "sklearn", "sklearn.metrics", "pytablewriter", "rouge_score"]:
    stub(_name)
if "sqlitedict" in sys.modules and not hasattr(sys.modules["sqlitedict"], "SqliteDict"):
    sys.modules["sqlitedict"].SqliteDict = object

import datasets  # noqa: E402
import lm_eval  # noqa: E402
import yaml  # noqa: E402
from lm_eval.api.metrics import exact_match_hf_evaluate  # noqa: E402
from lm_eval.api.task import ConfigurableTask  # noqa: E402
from lm_eval.filters.extraction import RegexFilter  # noqa: E402


TASKS = Path(lm_eval.__file__).parent / "tasks"


def sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def load_yaml(path: Path) -> dict:
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda l, n: lm_eval.utils.import_function(l, n, path))
    cfg = yaml.load(path.read_text(), Loader=loader)
    if "include" in cfg:
        base = load_yaml(path.parent / cfg.pop("include"))
        base.update(cfg)
        cfg = base
    return cfg


def make_task(cfg: dict, splits: dict[str, list[dict]]) -> ConfigurableTask:
    cfg = {k: v for k, v in cfg.items() if k not in ("tag", "task_alias", "dataset_path", "dataset_name")}
    cfg["custom_dataset"] = lambda **_: datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
    task = ConfigurableTask(config=cfg)
    task.set_fewshot_seed(seed=1234)  # evaluator.simple_evaluate's fewshot_random_seed
    return task


def prompts(task: ConfigurableTask, shots: int, limit: int | None = None) -> list[str | list[str]]:
    docs = list(task.eval_docs)[:limit]
    return [task.fewshot_context(doc, num_fewshot=shots) for doc in docs]


def hf_rows() -> dict[str, list[dict]]:
    """The fixture slices as the HF datasets' rows lm-eval reads (fields as its YAMLs use them)."""
    import csv
    import re

    labels = [int(x) for x in (DATA / "piqa" / "valid-labels.lst").read_text().split()]
    piqa = [{**d, "label": labels[i]} for i, d in enumerate(jsonl(DATA / "piqa" / "valid.jsonl"))]
    with open(DATA / "boolq" / "boolq_validation.csv", newline="", encoding="utf-8") as f:
        boolq = [{"question": r["question"], "passage": r["passage"], "label": int(r["label"])} for r in csv.DictReader(f)]
    with open(DATA / "openbookqa" / "test.tsv", newline="", encoding="utf-8") as f:
        obqa = []
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            m = re.fullmatch(r"\(A\) (.*) \(B\) (.*) \(C\) (.*) \(D\) (.*)", r["Choices"], re.S)
            obqa.append({"question_stem": r["Question Stem"], "choices": {"text": list(m.groups()), "label": list("ABCD")}, "answerKey": r["Answer Key"]})
    wino = [{k: d[k] for k in ("sentence", "option1", "option2", "answer")} for d in jsonl(DATA / "winogrande" / "winogrande_dev.jsonl")]
    return {"piqa": piqa, "boolq": boolq, "openbookqa": obqa, "winogrande": wino, "arc_easy": jsonl(DATA / "arc" / "ARC-Easy-test.jsonl")}


# Few-shot formats of the zero-shot tasks, with their train split made of the evaluated slice itself
# (shared/data has no train splits): the tasks without a test split (PIQA, BoolQ, WinoGrande) exclude
# the evaluated document, ARC and OpenBookQA (test ≠ train) do not.
PROMPT_TASKS = {
    "piqa": ("piqa/piqa.yaml", "validation"),
    "boolq": ("super_glue/boolq/default.yaml", "validation"),
    "winogrande": ("winogrande/default.yaml", "validation"),
    "arc_easy": ("arc/arc_easy.yaml", "test"),
    "openbookqa": ("openbookqa/openbookqa.yaml", "test"),
}
PROMPTS_OUT = DATA / "lm-eval-fewshot-prompts.json"


def zero_shot_task_prompts(shots: int = 3, limit: int = 8) -> dict:
    rows = hf_rows()
    out = {}
    for name, (yaml_file, split) in PROMPT_TASKS.items():
        task = make_task(load_yaml(TASKS / yaml_file), {split: rows[name], "train": rows[name]})
        contexts = prompts(task, shots, limit)
        # per document: its contexts (one, or one per choice for WinoGrande's multiple inputs)
        out[name] = [[sha(c) for c in (ctx if isinstance(ctx, list) else [ctx])] for ctx in contexts]
        out[name + ":first"] = contexts[0]
    return {"lm_eval": "0.4.13", "shots": shots, "limit": limit, "tasks": out}


def main() -> None:
    # The oracles of both real models (the prompts are the model's input text, so the same; the
    # generations, filtered and scored, are each model's own).
    for path in [OUT, OUT.with_name("oracle-fewshot-llama32k.json"), OUT.with_name("oracle-fewshot-llama32k-bf16.json")]:
        if path.exists():
            check_oracle(path)
    PROMPTS_OUT.write_text(json.dumps(zero_shot_task_prompts(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {PROMPTS_OUT}")


def check_oracle(path: Path) -> None:
    oracle = json.loads(path.read_text(encoding="utf-8"))
    checked = 0
    for subject in MMLU_SUBJECTS:
        cfg = load_yaml(TASKS / "mmlu" / "default" / f"mmlu_{subject}.yaml")
        task = make_task(cfg, {"test": mmlu_rows(subject, "test"), "dev": mmlu_rows(subject, "dev")})
        for shots in (0, 5):
            want = oracle["mmlu"][str(shots)]["tasks"][f"mmlu_{subject}"]["docs"]
            got = prompts(task, shots)
            assert [sha(p) for p in got] == [d["prompt_sha256"] for d in want], f"mmlu_{subject} {shots}-shot prompts differ"
            checked += len(got)
    gsm = make_task(load_yaml(TASKS / "gsm8k" / "gsm8k.yaml"), {"test": jsonl(DATA / "gsm8k" / "test.jsonl"), "train": jsonl(DATA / "gsm8k" / "train.jsonl")})
    got = prompts(gsm, 5)
    assert [sha(p) for p in got] == [d["prompt_sha256"] for d in oracle["gsm8k"]["docs"]], "gsm8k prompts differ"
    checked += len(got)
    lam = make_task(load_yaml(TASKS / "lambada" / "lambada_openai.yaml"), {"test": jsonl(DATA / "lambada" / "lambada_test.jsonl")})
    got = prompts(lam, 2, 10)
    assert [sha(p) for p in got] == [d["prompt_sha256"] for d in oracle["lambada_openai"]["docs"]], "lambada prompts differ"
    checked += len(got)

    strict = RegexFilter(regex_pattern=r"#### (\-?[0-9\.\,]+)", group_select=0)
    flexible = RegexFilter(regex_pattern=r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
    ignore = dict(ignore_case=True, ignore_punctuation=False, regexes_to_ignore=[",", "\\$", "(?s).*#### ", "\\.$"])
    em = lambda p, r: exact_match_hf_evaluate(predictions=[p], references=[r], **ignore)["exact_match"]
    test_docs = jsonl(DATA / "gsm8k" / "test.jsonl")
    for doc, d in zip(test_docs, oracle["gsm8k"]["docs"], strict=True):
        s, f = strict.apply([[d["text"]]], None)[0][0], flexible.apply([[d["text"]]], None)[0][0]
        assert {"strict-match": s, "flexible-extract": f} == d["filtered"]
        assert {"strict-match": em(s, doc["answer"]), "flexible-extract": em(f, doc["answer"])} == d["exact_match"]
    for c in oracle["filter_cases"]:
        s, f = strict.apply([[c["response"]]], None)[0][0], flexible.apply([[c["response"]]], None)[0][0]
        assert (s, f) == (c["strict-match"], c["flexible-extract"]), c
        assert {"strict-match": em(s, c["reference"]), "flexible-extract": em(f, c["reference"]), "raw": em(c["response"], c["reference"])} == c["exact_match"], c
    print(f"{path.name}: lm-eval {lm_eval.__version__ if hasattr(lm_eval, '__version__') else '0.4.13'}: {checked} prompts byte-identical to the oracle; "
          f"filters and exact_match equal on {len(test_docs)} generations and {len(oracle['filter_cases'])} crafted responses")


if __name__ == "__main__":
    main()

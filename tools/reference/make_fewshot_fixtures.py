#!/usr/bin/env python3
"""Copies the MMLU and GSM8K slices the tests need from shared/data into test/fixtures/tasks,
byte for byte (whole records, line endings kept):

  mmlu/dev/<s>_dev.csv    whole file, for the oracle subjects (abstract_algebra, global_facts, machine_learning)
  mmlu/test/<s>_test.csv  first 10 records of the oracle subjects, first 2 of every other subject
  gsm8k/test.jsonl        first 10 lines;  gsm8k/train.jsonl  first 100 lines (the few-shot pool)

Usage, from the repository root:  python3 tools/reference/make_fewshot_fixtures.py [../shared/data]
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
DST = ROOT / "test" / "fixtures" / "tasks"
ORACLE_SUBJECTS = ["abstract_algebra", "global_facts", "machine_learning"]


def first_records(data: bytes, n: int) -> bytes:
    """The bytes of the first n CSV records (RFC 4180: a newline inside quotes does not end a record)."""
    quoted = False
    count = 0
    i = 0
    while i < len(data):
        c = data[i : i + 1]
        if c == b'"':
            quoted = not quoted  # a doubled quote toggles twice
        elif c in (b"\n", b"\r") and not quoted:
            if c == b"\r" and data[i + 1 : i + 2] == b"\n":
                i += 1
            count += 1
            if count == n:
                return data[: i + 1]
        i += 1
    return data


def main() -> None:
    subjects = sorted(p.name[: -len("_test.csv")] for p in (SRC / "mmlu" / "test").glob("*_test.csv"))
    assert len(subjects) == 57, len(subjects)
    for split in ("dev", "test"):
        (DST / "mmlu" / split).mkdir(parents=True, exist_ok=True)
    for s in subjects:
        data = (SRC / "mmlu" / "test" / f"{s}_test.csv").read_bytes()
        (DST / "mmlu" / "test" / f"{s}_test.csv").write_bytes(first_records(data, 10 if s in ORACLE_SUBJECTS else 2))
    for s in ORACLE_SUBJECTS:
        (DST / "mmlu" / "dev" / f"{s}_dev.csv").write_bytes((SRC / "mmlu" / "dev" / f"{s}_dev.csv").read_bytes())
    (DST / "gsm8k").mkdir(exist_ok=True)
    for name, n in (("test.jsonl", 10), ("train.jsonl", 100)):
        lines = (SRC / "gsm8k" / name).read_bytes().split(b"\n")
        (DST / "gsm8k" / name).write_bytes(b"\n".join(lines[:n]) + b"\n")
    print(f"wrote {DST}/mmlu and {DST}/gsm8k")


if __name__ == "__main__":
    main()

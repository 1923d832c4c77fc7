#!/usr/bin/env python3
"""Encode texts with pruned tokenizers in Hugging Face `tokenizers` (Rust) and write the ids as a fixture.

Input: the folder written by ``tools/reference/write_pruned_tokenizers.ts`` (``manifest.json`` plus one
pruned ``tokenizer.json`` per case). For every case this script loads the pruned file and the original
``tokenizer.json`` it came from, encodes the manifest's texts with both (special tokens added), and
checks on the Rust side what the TypeScript tests check on the JS side:

  * the pruned vocabulary has exactly the requested size and every id is below it,
  * decoding the pruned ids gives the same text as decoding the original ids,
  * a text whose original ids are all kept gets exactly the remapped original ids.

It then writes ``test/fixtures/vocab/oracle-ids.json`` (texts, and per case the original and pruned
ids), which ``test/vocab-oracle.test.ts`` compares with @huggingface/tokenizers.

Usage, from the repository root:
    node --import tsx tools/reference/write_pruned_tokenizers.ts .tmp/pruned
    ../venv-ref/bin/python tools/reference/tokenizer_oracle.py .tmp/pruned
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "test" / "fixtures" / "vocab" / "oracle-ids.json"


def check_case(case: dict, texts: list[str], original: Tokenizer, pruned: Tokenizer) -> tuple[list, list]:
    old2new = {old: new for new, old in enumerate(case["keep"])}
    size = pruned.get_vocab_size(with_added_tokens=True)
    if size != case["size"]:
        raise SystemExit(f"{case['name']}: pruned vocabulary has {size} ids, asked {case['size']}")
    original_ids, pruned_ids = [], []
    for text in texts:
        before = original.encode(text).ids
        after = pruned.encode(text).ids
        where = f"{case['name']} text {text!r}: {before} -> {after}"
        if any(i < 0 or i >= size for i in after):
            raise SystemExit(f"id out of range for {where}")
        if pruned.decode(after, skip_special_tokens=False) != original.decode(before, skip_special_tokens=False):
            raise SystemExit(f"decoded text differs for {where}")
        if all(i in old2new for i in before) and after != [old2new[i] for i in before]:
            raise SystemExit(f"kept-only text changed its ids for {where}")
        original_ids.append(before)
        pruned_ids.append(after)
    return original_ids, pruned_ids


def main(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    texts = manifest["texts"]
    cases = []
    for case in manifest["cases"]:
        original = Tokenizer.from_file(str(ROOT / case["source_dir"] / "tokenizer.json"))
        pruned = Tokenizer.from_file(str(folder / case["file"]))
        original_ids, pruned_ids = check_case(case, texts, original, pruned)
        cases.append(
            {
                "name": case["name"],
                "source_dir": case["source_dir"],
                "size": case["size"],
                "mode": case["mode"],
                "original_ids": original_ids,
                "pruned_ids": pruned_ids,
            }
        )
        print(f"{case['name']}: ok ({sum(map(len, pruned_ids))} pruned ids)")
    fixture = {
        "generator": "tools/reference/tokenizer_oracle.py",
        "tokenizers_version": tokenizers.__version__,
        "texts": texts,
        "cases": cases,
    }
    FIXTURE.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))

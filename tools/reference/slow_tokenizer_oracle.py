#!/usr/bin/env python3
"""Check pruned slow-tokenizer files (tokenizer.model, vocab.json + merges.txt) with readers that never see
tokenizer.json, and write the ids they give as a fixture.

Input: the folder written by ``tools/reference/write_slow_tokenizers.ts`` (``manifest.json`` and, per case,
``original/`` and ``pruned/``). Every file's sha256 is checked against the manifest first. Then, per case:

SentencePiece (``tokenizer.model``):
  * ``sentencepiece`` (``SentencePieceProcessor(model_file=...)``, the library slow tokenizers and llama.cpp's
    converter use) encodes the texts with the pruned model;
  * ``transformers.AutoTokenizer`` loads a folder holding ``tokenizer.model`` and ``tokenizer_config.json``
    but no ``tokenizer.json`` (so it converts ``tokenizer.model`` itself);
  * the protobuf, parsed with ``sentencepiece_model_pb2``: the pruned pieces are the kept original pieces
    (string, score, type) in order, piece i is the pruned tokenizer.json's id i, and trainer_spec,
    normalizer_spec, denormalizer_spec and self_test_data serialise to the original's bytes.

GPT-2 style (``vocab.json`` + ``merges.txt`` + ``added_tokens.json``):
  * ``transformers.AutoTokenizer`` loads a folder without ``tokenizer.json`` (Qwen2Tokenizer builds its BPE
    from vocab.json and merges.txt);
  * an independent pure-Python byte-level BPE (OpenAI's GPT-2 encoder algorithm: bytes_to_unicode, merge
    ranks from merges.txt, Qwen2's pre-tokenization regex and NFC, added tokens split out first) reads the
    three files;
  * the files themselves: vocab.json is the pruned tokenizer.json's model vocabulary, merges.txt its merges
    in order, added_tokens.json its added tokens.

Both tokenizers of each pair are compared with Hugging Face ``tokenizers`` (Rust) on the case's
``tokenizer.json``, on the original files and on the pruned ones. A text on which a slow reader and the fast
tokenizer already disagree on the ORIGINAL files (SentencePiece collapses whitespace runs and never matches
``</s>`` in text; tokenizer.json does not) is recorded, and for it the pruned slow ids must decode to the
original slow text and keep the remapped original ids when all of them are kept. Everywhere else the pruned
slow ids must equal the pruned fast ids. Any failure stops the script.

Writes ``test/fixtures/vocab/oracle-slow.json``. Usage, from the repository root:
    node --import tsx tools/reference/write_slow_tokenizers.ts .tmp/slow
    ../venv-ref/bin/python tools/reference/slow_tokenizer_oracle.py .tmp/slow
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path

import regex
import sentencepiece
import tokenizers
import transformers
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Tokenizer
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "test" / "fixtures" / "vocab" / "oracle-slow.json"

# transformers' Qwen2 pre-tokenization (models/qwen2/tokenization_qwen2.py), written out here so the pure-Python
# BPE does not read it from the tokenizer.json under test.
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def fail(message: str) -> None:
    raise SystemExit(f"FAILED: {message}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def without_tokenizer_json(folder: Path, tmp: Path) -> Path:
    """A copy of the folder without tokenizer.json, so that loaders must read the slow files."""
    target = tmp / folder.parent.name / folder.name
    target.mkdir(parents=True)
    for f in folder.iterdir():
        if f.name != "tokenizer.json":
            shutil.copy(f, target / f.name)
    return target


# ── pure-Python byte-level BPE (GPT-2's encoder.py algorithm) ──


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class PythonBpe:
    def __init__(self, folder: Path):
        self.encoder = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
        merges = [tuple(line.split()) for i, line in enumerate(lines) if line.strip() and not (i == 0 and line.startswith("#version"))]
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.added = json.loads((folder / "added_tokens.json").read_text(encoding="utf-8"))
        self.byte_encoder = bytes_to_unicode()
        self.pattern = regex.compile(QWEN2_PATTERN)
        alternatives = sorted(self.added, key=len, reverse=True)
        self.split = regex.compile("(" + "|".join(regex.escape(a) for a in alternatives) + ")") if alternatives else None

    def bpe(self, word: str) -> list[str]:
        parts = list(word)
        while len(parts) > 1:
            pairs = {(a, b) for a, b in zip(parts, parts[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        chunks = self.split.split(text) if self.split else [text]
        for chunk in chunks:
            if chunk in self.added:
                ids.append(self.added[chunk])
                continue
            for piece in self.pattern.findall(unicodedata.normalize("NFC", chunk)):
                word = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
                ids.extend(self.encoder[t] for t in self.bpe(word))
        return ids


# ── checks ──


def compare(name: str, reader: str, versus: str, texts: list[str], old2new: dict[int, int], original: tuple, pruned: tuple, decode) -> dict:
    """original/pruned: (slow ids per text, fast ids per text). Returns the fixture record of this reader: its
    ids on the pruned files, null where they equal the fast ids `versus` names."""
    (orig_slow, orig_fast), (pruned_slow, pruned_fast) = original, pruned
    differs = []
    for i, text in enumerate(texts):
        where = f"{name} / {reader} / text {i} {text!r}"
        if orig_slow[i] == orig_fast[i]:
            if pruned_slow[i] != pruned_fast[i]:
                fail(f"{where}: slow {pruned_slow[i]} != fast {pruned_fast[i]} on the pruned files (they agree on the original)")
        else:
            differs.append(i)
            if decode(pruned_slow[i], "pruned") != decode(orig_slow[i], "original"):
                fail(f"{where}: the pruned slow ids decode to another text than the original slow ids")
            if all(t in old2new for t in orig_slow[i]) and pruned_slow[i] != [old2new[t] for t in orig_slow[i]]:
                fail(f"{where}: every original slow id is kept, but the pruned slow ids are not their remapping")
    agree = len(texts) - len(differs)
    print(f"  {reader}: {agree}/{len(texts)} texts give the fast ids on the pruned files"
          + (f"; texts {differs} differ already on the original files, and there decode and remap consistently" if differs else ""))
    return {
        "reader": reader,
        "versus": versus,
        "differs_on_original": differs,
        "ids": [None if slow == fast else slow for slow, fast in zip(pruned_slow, pruned_fast)],
    }


def check_sentencepiece(case: dict, texts: list[str], folders: dict[str, Path], tmp: Path) -> list[dict]:
    name = case["name"]
    old2new = {old: new for new, old in enumerate(case["keep"])}
    protos = {}
    for side in ("original", "pruned"):
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString((folders[side] / "tokenizer.model").read_bytes())
        protos[side] = proto
    orig, pruned = protos["original"], protos["pruned"]
    expected = [p for i, p in enumerate(orig.pieces) if i in old2new]
    if [(p.piece, p.score, p.type) for p in pruned.pieces] != [(p.piece, p.score, p.type) for p in expected]:
        fail(f"{name}: pruned pieces are not the kept original pieces in order")
    vocab = json.loads((folders["pruned"] / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    if any(by_id.get(i) != p.piece for i, p in enumerate(pruned.pieces)):
        fail(f"{name}: pruned piece i is not the pruned tokenizer.json's id i")
    for field in ("trainer_spec", "normalizer_spec", "denormalizer_spec", "self_test_data"):
        if getattr(orig, field).SerializeToString() != getattr(pruned, field).SerializeToString():
            fail(f"{name}: {field} differs from the original's")

    fast = {side: Tokenizer.from_file(str(folders[side] / "tokenizer.json")) for side in folders}
    processors = {side: sentencepiece.SentencePieceProcessor(model_file=str(folders[side] / "tokenizer.model")) for side in folders}
    if processors["pruned"].get_piece_size() != len(case["keep"]):
        fail(f"{name}: sentencepiece sees {processors['pruned'].get_piece_size()} pieces")
    converted = {side: AutoTokenizer.from_pretrained(str(without_tokenizer_json(folders[side], tmp))) for side in folders}
    for side, tok in converted.items():
        if len(tok) != len(fast[side].get_vocab(with_added_tokens=True)):
            fail(f"{name}: transformers converted {side} tokenizer.model into {len(tok)} ids")

    records = []
    spm_ids = {side: ([processors[side].encode(t) for t in texts], [fast[side].encode(t, add_special_tokens=False).ids for t in texts]) for side in folders}
    records.append(compare(name, "sentencepiece", "fast_ids_without_specials", texts, old2new, spm_ids["original"], spm_ids["pruned"], lambda ids, side: processors[side].decode(ids)))
    hf_ids = {side: ([converted[side](t)["input_ids"] for t in texts], [fast[side].encode(t).ids for t in texts]) for side in folders}
    records.append(compare(name, "transformers from tokenizer.model", "fast_ids", texts, old2new, hf_ids["original"], hf_ids["pruned"], lambda ids, side: converted[side].decode(ids)))
    return records


def check_gpt2_files(case: dict, texts: list[str], folders: dict[str, Path], tmp: Path) -> list[dict]:
    name = case["name"]
    old2new = {old: new for new, old in enumerate(case["keep"])}
    pruned_json = json.loads((folders["pruned"] / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = json.loads((folders["pruned"] / "vocab.json").read_text(encoding="utf-8"))
    if vocab != pruned_json["model"]["vocab"]:
        fail(f"{name}: vocab.json is not the pruned tokenizer.json's model vocabulary")
    lines = (folders["pruned"] / "merges.txt").read_text(encoding="utf-8").split("\n")
    if lines[0] != "#version: 0.2" or lines[-1] != "":
        fail(f"{name}: merges.txt lost its header or final newline")
    merges = [line.split(" ") for line in lines[1:-1]]
    if merges != [list(m) if isinstance(m, list) else m.split(" ") for m in pruned_json["model"]["merges"]]:
        fail(f"{name}: merges.txt is not the pruned tokenizer.json's merges in order")
    added = json.loads((folders["pruned"] / "added_tokens.json").read_text(encoding="utf-8"))
    if added != {t["content"]: t["id"] for t in pruned_json["added_tokens"]}:
        fail(f"{name}: added_tokens.json is not the pruned tokenizer.json's added tokens")

    fast = {side: Tokenizer.from_file(str(folders[side] / "tokenizer.json")) for side in folders}
    fast_ids = {side: [fast[side].encode(t).ids for t in texts] for side in folders}
    from_files = {side: AutoTokenizer.from_pretrained(str(without_tokenizer_json(folders[side], tmp))) for side in folders}
    python_bpe = {side: PythonBpe(folders[side]) for side in folders}
    records = []
    hf_ids = {side: ([from_files[side](t)["input_ids"] for t in texts], fast_ids[side]) for side in folders}
    records.append(compare(name, "transformers from vocab.json + merges.txt", "fast_ids", texts, old2new, hf_ids["original"], hf_ids["pruned"], lambda ids, side: from_files[side].decode(ids)))
    py_ids = {side: ([python_bpe[side].encode(t) for t in texts], fast_ids[side]) for side in folders}
    records.append(compare(name, "pure-Python GPT-2 BPE", "fast_ids", texts, old2new, py_ids["original"], py_ids["pruned"], lambda ids, side: fast[side].decode(ids, skip_special_tokens=False)))
    return records


def main(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    texts = manifest["texts"]
    cases = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for case in manifest["cases"]:
            folders = {side: folder / case["name"] / side for side in ("original", "pruned")}
            for side in folders:
                for file, digest in case[f"{side}_sha256"].items():
                    if sha256(folders[side] / file) != digest:
                        fail(f"{case['name']}/{side}/{file}: sha256 differs from the manifest")
            print(f"{case['name']} (V′ = {len(case['keep'])})")
            tmp = Path(tmp_name) / case["name"]
            check = check_sentencepiece if "tokenizer.model" in case["pruned_sha256"] else check_gpt2_files
            records = check(case, texts, folders, tmp)
            fast = Tokenizer.from_file(str(folders["pruned"] / "tokenizer.json"))
            cases.append(
                {
                    "name": case["name"],
                    "source": case["source"],
                    "size": case["size"],
                    "mode": case["mode"],
                    "pruned_sha256": case["pruned_sha256"],
                    "fast_ids": [fast.encode(t).ids for t in texts],
                    "slow": records,
                }
            )
            if any(r["versus"] == "fast_ids_without_specials" for r in records):
                cases[-1]["fast_ids_without_specials"] = [fast.encode(t, add_special_tokens=False).ids for t in texts]
    fixture = {
        "generator": "tools/reference/slow_tokenizer_oracle.py",
        "versions": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "sentencepiece": sentencepiece.__version__,
        },
        "texts": texts,
        "cases": cases,
    }
    FIXTURE.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))

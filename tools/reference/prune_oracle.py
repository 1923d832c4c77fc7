"""Oracle for pruned checkpoints: each output of tools/reference/write_prune_cases.ts is loaded
with transformers (AutoModelForCausalLM, fp32, eager) and its logits recorded; for checkpoints
with a tokenizer, Hugging Face `tokenizers` encodes the prompts. Also computes the brute-force
act² reference: Σ_t w_t · h_t² of each layer's down_proj input, via forward hooks.

  ../venv-ref/bin/python tools/reference/prune_oracle.py [.tmp/prune-cases]
writes test/fixtures/pruned/oracle.json and test/fixtures/pruned/<case>.logits.f32
"""
import hashlib, json, os, sys

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

out = sys.argv[1] if len(sys.argv) > 1 else ".tmp/prune-cases"
fixtures = "test/fixtures/pruned"
cases = json.load(open(f"{fixtures}/cases.json"))
hashes = json.load(open(f"{out}/hashes.json"))
PROMPTS = ["Once upon a time, there was a little girl named Lily.", "The cat sat on the mat. It was happy!"]

oracle = {"transformers": __import__("transformers").__version__, "torch": torch.__version__, "cases": {}}
for case in cases:
    d = os.path.join(out, case["name"])
    files = {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() for f in sorted(os.listdir(d)) if f.endswith(".safetensors")}
    assert files == hashes[case["name"]], case["name"]
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    if os.path.exists(os.path.join(d, "tokenizer.json")):
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        inputs = [tok.encode(p).ids for p in PROMPTS]
    else:
        golden = json.load(open(os.path.join(case["source"], "golden.json")))
        inputs = [i["input_ids"] for i in golden["inputs"]]
    logits = []
    with torch.no_grad():
        for ids in inputs:
            logits.append(model(torch.tensor([ids])).logits[0].numpy().astype("<f4"))
    np.concatenate([l.reshape(-1) for l in logits]).tofile(f"{fixtures}/{case['name']}.logits.f32")
    oracle["cases"][case["name"]] = {"weights_sha256": files, "inputs": inputs, "prompts": PROMPTS if "tokenizer.json" in os.listdir(d) else None,
                                     "vocab_size": model.config.vocab_size, "intermediate_size": model.config.intermediate_size,
                                     "num_hidden_layers": model.config.num_hidden_layers}
    print(case["name"], "ok", [len(i) for i in inputs])

# Brute-force act² on the unpruned source model.
a = json.load(open(f"{out}/act2-case.json"))
model = AutoModelForCausalLM.from_pretrained(a["source"], dtype=torch.float64, attn_implementation="eager").eval()
sums = [torch.zeros(model.config.intermediate_size, dtype=torch.float64) for _ in model.model.layers]
current = {}
for i, layer in enumerate(model.model.layers):
    def hook(module, args, i=i):
        h = args[0][0]  # [T, I]
        sums[i] += (current["w"][:, None] * h * h).sum(0)
    layer.mlp.down_proj.register_forward_pre_hook(hook)
with torch.no_grad():
    for ids, w in zip(a["windows"], a["weights"]):
        current["w"] = torch.tensor(w, dtype=torch.float64)
        model(torch.tensor([ids]))
oracle["act2"] = {"source": a["source"], "windows_sha256": hashlib.sha256(json.dumps(a["windows"]).encode()).hexdigest(), "scores": [s.tolist() for s in sums]}
json.dump(oracle, open(f"{fixtures}/oracle.json", "w"))
print("act2 ok")

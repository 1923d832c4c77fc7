"""Oracle for least-squares compensation (docs/compensation.md), independent of our code.

For each case written by tools/reference/write_compensation_cases.ts:
  1. the dense source model runs in float64 in transformers (eager) on the same calibration
     windows; forward pre-hooks on every down_proj collect its inputs h_t, and
     G = sum_t w_t h_t h_t^T (w_t = 1 where the input token is kept by the pruned vocabulary);
  2. kept channels, checked equal to ours: with selection "greedy" (the default) removed greedily
     in rounds of ceil(I / 64) channels by Optimal Brain Surgeon cost |W_:,j|^2 / [H^-1]_jj, H = G + damp * mean
     diag(G) * I, W and H^-1 updated after each round for the channels it removed (ZipLM), a channel
     with G_jj = 0 costing 0; with
     "act2" the I' largest diag(G) (common act^2; ties: lower index);
  3. W' = W_K + W_R G_RK (G_KK + lambda I)^-1, lambda = damp * mean diag(G_KK), float64 NumPy solve;
  4. our pruned output is loaded with transformers (float32, eager), every down_proj replaced by the
     oracle's W' (rounded to float32, then to the checkpoint's stored dtype: our bf16 W' may round
     differently on another CPU, this one does not), and its logits recorded.
  ../venv-ref/bin/python tools/reference/compensation_oracle.py [.tmp/compensation-cases]
writes test/fixtures/compensation/<case>.down.f32 (W' of every layer, concatenated, float32),
<case>.logits.f32 and oracle.json.
"""
import hashlib, json, os, sys

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

out = sys.argv[1] if len(sys.argv) > 1 else ".tmp/compensation-cases"
fixtures = "test/fixtures/compensation"
cases = json.load(open(f"{fixtures}/cases.json"))
PROMPTS = ["Once upon a time, there was a little girl named Lily.", "The cat sat on the mat. It was happy!"]

ROUNDS_PER_LAYER = 64


def greedy_keep(W, G, keep, damp):
    """Kept channels (ascending) after removing I - keep greedily by OBS cost, in rounds of ceil(I / 64)."""
    I = G.shape[0]
    if keep >= I or not np.mean(np.diag(G)) > 0:
        return list(range(keep))
    H = np.linalg.inv(G + damp * np.mean(np.diag(G)) * np.eye(I))
    W = W.copy()
    alive = list(range(I))
    remove = I - keep
    per_round = -(-I // ROUNDS_PER_LAYER)
    removed = 0
    while removed < remove:
        cost = {j: (0.0 if G[j, j] == 0 else np.sum(W[:, j] ** 2) / H[j, j] if H[j, j] > 0 else np.inf) for j in alive}
        R = sorted(alive, key=lambda j: (cost[j], j))[: min(per_round, remove - removed)]
        alive = [j for j in alive if j not in set(R)]
        removed += len(R)
        X = np.linalg.solve(H[np.ix_(R, R)], H[R, :])  # [b, I]
        W -= W[:, R] @ X
        H -= H[:, R] @ X
    return alive


oracle = {"transformers": __import__("transformers").__version__, "torch": torch.__version__, "numpy": np.__version__, "cases": {}}
for case in cases:
    d = os.path.join(out, case["name"])
    inp = json.load(open(os.path.join(d, "oracle-input.json")))
    dense = AutoModelForCausalLM.from_pretrained(case["source"], dtype=torch.float64, attn_implementation="eager").eval()
    I = dense.config.intermediate_size
    grams = [np.zeros((I, I)) for _ in dense.model.layers]
    current = {}
    for i, layer in enumerate(dense.model.layers):
        def hook(module, args, i=i):
            h = args[0][0].numpy()  # [T, I]
            grams[i] += (h * current["w"][:, None]).T @ h
        layer.mlp.down_proj.register_forward_pre_hook(hook)
    with torch.no_grad():
        for ids, w in zip(inp["windows"], inp["weights"]):
            current["w"] = np.array(w, dtype=np.float64)
            dense(torch.tensor([ids]))
    ffn = case["ffn"]
    compensated = []
    lambdas = []
    for i, (layer, G) in enumerate(zip(dense.model.layers, grams)):
        diag = np.diag(G)
        W = layer.mlp.down_proj.weight.detach().numpy()  # [D, I]
        if inp["selection"] == "greedy":
            K = greedy_keep(W, G, ffn, inp["damp"])
        else:
            K = sorted(sorted(range(I), key=lambda j: (-diag[j], j))[:ffn])
        assert K == inp["channels"][i], f"{case['name']} layer {i}: kept channels differ from ours"
        R = [j for j in range(I) if j not in set(K)]
        lam = inp["damp"] * np.mean(diag[K])
        A = G[np.ix_(K, K)] + lam * np.eye(len(K))
        Z = W[:, R] @ G[np.ix_(R, K)]  # [D, n]
        Wp = W[:, K] + np.linalg.solve(A, Z.T).T
        compensated.append(Wp.astype("<f4").reshape(-1))
        lambdas.append(float(lam))
    np.concatenate(compensated).tofile(f"{fixtures}/{case['name']}.down.f32")

    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    stored = AutoModelForCausalLM.from_pretrained(d, dtype="auto").dtype  # the checkpoint's own dtype
    with torch.no_grad():
        for layer, Wp in zip(model.model.layers, compensated):
            w = torch.from_numpy(Wp.reshape(layer.mlp.down_proj.weight.shape).copy())
            layer.mlp.down_proj.weight.copy_(w.to(stored).to(torch.float32))
    if os.path.exists(os.path.join(d, "tokenizer.json")):
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        inputs = [tok.encode(p).ids for p in PROMPTS]
    else:
        golden = json.load(open(os.path.join(case["source"], "golden.json")))
        inputs = [i["input_ids"] for i in golden["inputs"]]
    with torch.no_grad():
        logits = [model(torch.tensor([ids])).logits[0].numpy().astype("<f4") for ids in inputs]
    np.concatenate([l.reshape(-1) for l in logits]).tofile(f"{fixtures}/{case['name']}.logits.f32")
    files = {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() for f in sorted(os.listdir(d)) if f.endswith(".safetensors")}
    oracle["cases"][case["name"]] = {"weights_sha256": files, "inputs": inputs, "lambdas": lambdas, "intermediate_size": model.config.intermediate_size, "vocab_size": model.config.vocab_size,
                                     "windows_sha256": hashlib.sha256(json.dumps(inp["windows"]).encode()).hexdigest()}
    print(case["name"], "ok")
json.dump(oracle, open(f"{fixtures}/oracle.json", "w"), indent=1)

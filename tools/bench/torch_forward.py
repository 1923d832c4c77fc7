"""PyTorch/transformers side of `npm run bench:engine`: the same prefill (layers + LM head +
log-probabilities of the next tokens) on the same checkpoint and token ids, on CPU.

usage: torch_forward.py DIR IDS.json --threads N --reps R --batch B [--dtype float32|bfloat16] [--layers-only]
prints one JSON line: median seconds, tokens/s, peak RSS.
"""
import argparse, json, resource, statistics, time

import torch
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("ids")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reps", type=int, default=1)
p.add_argument("--batch", type=int, default=4, help="sequences per forward call")
p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="the dtype transformers loads the weights in")
p.add_argument("--layers-only", action="store_true", help="time the decoder layers alone (no LM head, no log-probabilities)")
a = p.parse_args()

torch.set_num_threads(a.threads)
ids = torch.tensor(json.load(open(a.ids)), dtype=torch.long)  # [S, T]
model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=getattr(torch, a.dtype))  # sdpa attention: transformers' fastest on CPU
model.eval()


def prefill():
    total = 0.0
    for s in range(0, ids.shape[0], a.batch):
        x = ids[s : s + a.batch]
        hidden = model.model(input_ids=x).last_hidden_state  # [b, T, D]
        if a.layers_only:
            continue
        flat = hidden.reshape(-1, hidden.shape[-1])
        targets = torch.roll(x, -1, dims=1).reshape(-1)
        for r in range(0, flat.shape[0], 1024):  # bounded logits memory
            logits = model.lm_head(flat[r : r + 1024])
            total += torch.log_softmax(logits, -1).gather(1, targets[r : r + 1024, None]).sum().item()
    return total


times = []
with torch.inference_mode():
    for _ in range(a.reps):
        t0 = time.perf_counter()
        prefill()
        times.append(time.perf_counter() - t0)
seconds = statistics.median(times)
print(json.dumps({
    "seconds": seconds,
    "tokensPerSecond": ids.numel() / seconds,
    "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "torch": torch.__version__,
    "threads": a.threads,
    "dtype": a.dtype,
    "layersOnly": a.layers_only,
    "attention": model.config._attn_implementation,
}))

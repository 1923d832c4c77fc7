"""PyTorch/transformers side of `npm run bench:efficiency`: the protocol of `compact eval --speed`
(prefill of P tokens whose ids cycle through the vocabulary as (i * 7919 + 1) % V, then N greedy
steps with the key/value cache, one sequence, medians of R repeats) on the same checkpoint, on CPU.

usage: torch_decode.py DIR --prompt-tokens P --new-tokens N --repeats R --threads T
prints one JSON line: prefill tokens/s, ms per decoded token.
"""
import argparse, json, statistics, time

import torch
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--prompt-tokens", type=int, required=True)
p.add_argument("--new-tokens", type=int, required=True)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

torch.set_num_threads(a.threads)
model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=torch.float32).eval()
V = model.config.vocab_size
prompt = torch.tensor([[(i * 7919 + 1) % V for i in range(a.prompt_tokens)]])

prefill, per_token = [], []
with torch.inference_mode():
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out = model(input_ids=prompt, use_cache=True)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        prefill.append(time.perf_counter() - t0)
        past = out.past_key_values
        t0 = time.perf_counter()
        for _ in range(a.new_tokens):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        per_token.append((time.perf_counter() - t0) / a.new_tokens)

print(json.dumps({
    "prefillTokensPerSecond": a.prompt_tokens / statistics.median(prefill),
    "msPerToken": 1000 * statistics.median(per_token),
    "torch": torch.__version__,
    "threads": a.threads,
}))

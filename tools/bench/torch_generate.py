"""transformers side of `npm run bench:tasks` (GSM8K): what a user of transformers runs for
lm-eval's generate_until — `model.generate` on left-padded batches, greedy, `max_new_tokens` =
max_gen_toks, a row finished once one of the stop strings shows in its decoded continuation (as
lm-eval's stop-sequence criterion) or at EOS — on the very prompts our engine ran (token ids,
already truncated, in the same order and batches), on CPU.

usage: torch_generate.py DIR PROMPTS.json --dtype bf16|f32 --batch-size B --repeats R --threads T
PROMPTS.json: {"prompts": [[ids…], …], "until": [str…], "max_gen_toks": N, "eos": [ids…]}
prints one JSON line: per repeat wall seconds, generated tokens, prefill seconds (until the first
token of each batch), decoding seconds and steps (the tokens after the first), and the generated
ids of repeat 1.
"""
import argparse, json, time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("prompts")
p.add_argument("--dtype", choices=["bf16", "f32"], required=True)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

torch.set_num_threads(a.threads)
job = json.load(open(a.prompts))
tok = AutoTokenizer.from_pretrained(a.dir)
model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=torch.bfloat16 if a.dtype == "bf16" else torch.float32).eval()
pad = job["eos"][0] if job["eos"] else 0


class StopStrings(StoppingCriteria):
    """Per row: done once a stop string is in its decoded continuation (lm-eval's MultiTokenEOSCriteria decodes the tail; the whole continuation is the same test)."""

    def __init__(self, start: int):
        self.start = start
        self.first = None  # when the prompt's forward pass had ended: the first call

    def __call__(self, input_ids, scores, **kwargs):
        if self.first is None:
            self.first = time.perf_counter()
        texts = tok.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in job["until"]) for t in texts], dtype=torch.bool)


def run_batch(prompts):
    width = max(len(x) for x in prompts)
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in prompts])  # left padding, as lm-eval's HF model
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts])
    stop = StopStrings(width)
    t0 = time.perf_counter()
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=job["max_gen_toks"],
        do_sample=False,
        pad_token_id=pad,
        eos_token_id=job["eos"] or None,
        stopping_criteria=StoppingCriteriaList([stop]),
    )
    t1 = time.perf_counter()
    # prefill = until the first token was chosen; steps = the tokens after the first
    return out[:, width:].tolist(), stop.first - t0, t1 - stop.first, out.shape[1] - width - 1


def own_tokens(row):
    """After a row has finished, generate pads it: its own tokens end at the first stop."""
    kept = []
    for t in row:
        kept.append(t)
        if t in job["eos"] or any(s in tok.decode(kept, skip_special_tokens=True) for s in job["until"]):
            break
    return kept


runs = []
first = None
with torch.inference_mode():
    for r in range(a.repeats):
        t0 = time.perf_counter()
        generated, prefill, decode, steps = [], 0.0, 0.0, 0
        for start in range(0, len(job["prompts"]), a.batch_size):
            rows, p_s, d_s, n = run_batch(job["prompts"][start : start + a.batch_size])
            generated += rows
            prefill, decode, steps = prefill + p_s, decode + d_s, steps + n
        seconds = time.perf_counter() - t0
        generated = [own_tokens(g) for g in generated]
        runs.append({"seconds": seconds, "generatedTokens": sum(len(g) for g in generated), "prefillSeconds": prefill, "decodeSeconds": decode, "steps": steps})
        first = first or generated

print(json.dumps({"runs": runs, "generated": first, "torch": torch.__version__, "dtype": a.dtype, "threads": a.threads}))

"""GGUF encodings of a fixed f32 array by llama.cpp's own Python package (gguf-py, `gguf.quants`),
the encoder llama.cpp's convert_hf_to_gguf.py uses: F16, BF16 and Q8_0 (blocks of 32).

Writes test/fixtures/gguf/quant-input.f32 (the values, little-endian f32, 8,192 of them: a seeded
normal sample at several scales plus edge cases: zeros, -0, f16 subnormals, halfway cases, values
past the f16 range, a block of zeros, a block with one large value) and quant-oracle.json (sha256 of
each encoding). The TypeScript encoders must give the same bytes (test/gguf-export.test.ts).

    ../venv-ref/bin/python tools/reference/gguf_quant_oracle.py
"""
import hashlib
import importlib.metadata
import json
from pathlib import Path

import gguf
import numpy as np
from gguf.quants import quantize

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "gguf"

rng = np.random.RandomState(1234)
parts = [
    rng.randn(4096).astype(np.float32),
    (rng.randn(1024) * 1e-3).astype(np.float32),
    (rng.randn(1024) * 300).astype(np.float32),
    np.zeros(32, np.float32),
    np.array([1000.0] + [0.001] * 31, np.float32),
    np.array([0.0, -0.0, 6e-8, -6e-8, 3e-8, 1e-8, 5.96e-8, 6.1e-5, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 1e-40, 2.0**-14, 2.0**-24], np.float32),
    # f16 halfway cases: 1 + k·2^-11 (odd and even neighbours), and bf16 ones: 1 + k·2^-8.
    np.array([1 + k * 2.0**-11 for k in range(1, 17)], np.float32),
    np.array([1 + k * 2.0**-8 for k in range(1, 17)], np.float32),
]
values = np.concatenate(parts)
values = np.concatenate([values, rng.randn(8192 - len(values)).astype(np.float32)])
assert len(values) == 8192 and len(values) % 32 == 0
OUT.mkdir(parents=True, exist_ok=True)
(OUT / "quant-input.f32").write_bytes(values.astype("<f4").tobytes())

sha = lambda b: hashlib.sha256(b).hexdigest()
oracle = {
    "source": f"gguf-py {importlib.metadata.version('gguf')} gguf.quants.quantize, numpy {np.__version__}",
    "values": len(values),
    "F16": sha(quantize(values, gguf.GGMLQuantizationType.F16).tobytes()),
    "BF16": sha(quantize(values, gguf.GGMLQuantizationType.BF16).tobytes()),
    "Q8_0": sha(quantize(values.reshape(-1, 256), gguf.GGMLQuantizationType.Q8_0).tobytes()),
}
(OUT / "quant-oracle.json").write_text(json.dumps(oracle, indent=2) + "\n")
print(json.dumps(oracle, indent=2))

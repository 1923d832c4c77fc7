/**
 * Python's `random.Random`, as far as LM-Evaluation-Harness's few-shot samplers use it:
 * `Random(seed)` for a non-negative integer seed (MT19937 seeded by init_by_array with the
 * seed's 32-bit words, CPython's random_seed), `getrandbits(k)` (k ≤ 32), `_randbelow(n)`
 * (getrandbits(n.bit_length()) until < n) and `sample(population, k)` (CPython 3.11
 * Lib/random.py: a pool for small populations, a set of picked indices otherwise). The same
 * seed gives the same draws as Python, number for number (checked against Python's own
 * `random` in the task oracle).
 */
import { check } from '../../util/errors.js';

const N = 624;
const M = 397;

export class PyRandom {
  private readonly mt = new Uint32Array(N);
  private index = N + 1;

  constructor(seed: number) {
    check(Number.isSafeInteger(seed) && seed >= 0, `a random seed must be a non-negative integer, got ${seed}`);
    // CPython: the absolute value's 32-bit words, least significant first (at least one word).
    const key: number[] = [];
    for (let s = seed; ;) {
      key.push(s % 2 ** 32);
      s = Math.floor(s / 2 ** 32);
      if (s === 0) break;
    }
    this.initByArray(key);
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i, modulo 2^32 (split the multiplication to stay exact).
      mt[i] = (((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i) >>> 0;
    }
    this.index = N;
  }

  private initByArray(key: number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ (((((prev & 0xffff0000) >>> 16) * 1664525) << 16) + (prev & 0x0000ffff) * 1664525)) + key[j] + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ (((((prev & 0xffff0000) >>> 16) * 1566083941) << 16) + (prev & 0x0000ffff) * 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.index = N;
  }

  /** genrand_uint32. */
  private next32(): number {
    const mt = this.mt;
    if (this.index >= N) {
      for (let kk = 0; kk < N; kk++) {
        const y = (mt[kk] & 0x80000000) | (mt[(kk + 1) % N] & 0x7fffffff);
        mt[kk] = (mt[(kk + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0)) >>> 0;
      }
      this.index = 0;
    }
    let y = mt[this.index++];
    y ^= y >>> 11;
    y = (y ^ ((y << 7) & 0x9d2c5680)) >>> 0;
    y = (y ^ ((y << 15) & 0xefc60000)) >>> 0;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** random.getrandbits(k) for 1 ≤ k ≤ 32. */
  getrandbits(k: number): number {
    check(Number.isInteger(k) && k >= 1 && k <= 32, `getrandbits: k must be in [1, 32], got ${k}`);
    return this.next32() >>> (32 - k);
  }

  /** random._randbelow(n): uniform in [0, n). */
  randbelow(n: number): number {
    check(Number.isSafeInteger(n) && n > 0 && n < 2 ** 32, `randbelow: n must be in [1, 2^32), got ${n}`);
    const k = Math.floor(Math.log2(n)) + 1; // n.bit_length()
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /** random.sample(range(n), k): k distinct indices in selection order. */
  sampleIndices(n: number, k: number): number[] {
    check(Number.isSafeInteger(k) && k >= 0 && k <= n, 'Sample larger than population or is negative');
    const result: number[] = new Array(k);
    let setsize = 21;
    if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4));
    if (n <= setsize) {
      const pool = Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i);
        result[i] = pool[j];
        pool[j] = pool[n - i - 1];
      }
    } else {
      const selected = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n);
        while (selected.has(j)) j = this.randbelow(n);
        selected.add(j);
        result[i] = j;
      }
    }
    return result;
  }

  /** random.sample(population, k). */
  sample<T>(population: readonly T[], k: number): T[] {
    return this.sampleIndices(population.length, k).map((i) => population[i]);
  }
}

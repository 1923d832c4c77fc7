/**
 * Exact sums of f32 values, so calibration statistics summed over shards equal, bit for bit, the
 * single run's: the sum of the same terms in any order and grouping is the same number.
 *
 * Every f32 (subnormals included) is an integer multiple of 2^-149, and so is every sum of them, so
 * a sum is held exactly as the integer sum · 2^149 (a BigInt). To stay fast, each accumulator first
 * adds in float64 and checks with TwoSum that the addition was exact (it is unless the terms span
 * more than ~53 bits of magnitude); an inexact addition moves the float64 partial sum and the term
 * into the BigInt part instead. Both parts are exact, so their total is.
 */
import { check } from '../util/errors.js';

/** Every f32 is k · 2^-SCALE_BITS for an integer k. */
const SCALE_BITS = 149;
const SCALE = 2 ** SCALE_BITS;

export class ExactSums {
  private readonly fast: Float64Array;
  private readonly spill: (bigint | undefined)[];

  constructor(readonly length: number) {
    this.fast = new Float64Array(length);
    this.spill = new Array<bigint | undefined>(length);
  }

  /** Adds x (a finite f32 value, or a sum of such that is exactly a double) to entry j. */
  add(j: number, x: number): void {
    const s = this.fast[j];
    const t = s + x;
    // The TwoSum of exactAdd, not exactAdd itself: its number | null result made this per-channel loop ~1.5× slower.
    if (twoSumError(s, x, t) === 0) this.fast[j] = t;
    else {
      this.spill[j] = (this.spill[j] ?? 0n) + BigInt(s * SCALE) + BigInt(x * SCALE);
      this.fast[j] = 0;
    }
  }

  /** Entry j when it is exactly a double (nothing spilled to the BigInt part), else null. */
  double(j: number): number | null {
    return this.spill[j] === undefined ? this.fast[j] : null;
  }

  /** Entry j as its exact scaled integer (sum · 2^149). */
  scaled(j: number): bigint {
    return (this.spill[j] ?? 0n) + BigInt(this.fast[j] * SCALE);
  }
}

/** s + x when that double is the exact sum, else null. */
export function exactAdd(s: number, x: number): number | null {
  const t = s + x;
  return twoSumError(s, x, t) === 0 ? t : null;
}

/** TwoSum: the rounding error of t = s + x (double), so that t + error = s + x exactly. */
function twoSumError(s: number, x: number, t: number): number {
  const b = t - s;
  return s - (t - b) + (x - b);
}

/** The double nearest an exact sum (deterministic: the same exact sum always gives the same double). */
export const scaledToNumber = (scaled: bigint): number => Number(scaled) / SCALE;

/**
 * An exact sum as text, canonical (one spelling per value): `0x<hex>p<e>` = hex · 2^e with hex
 * odd, a leading '-' when negative, and '0' for zero (e.g. 3 is 0x3p0, 0.5 is 0x1p-1).
 */
export function formatExact(scaled: bigint): string {
  if (scaled === 0n) return '0';
  const sign = scaled < 0n ? '-' : '';
  const hex = (scaled < 0n ? -scaled : scaled).toString(16);
  const digits = hex.replace(/0+$/, '');
  const odd = 31 - Math.clz32(parseInt(digits.slice(-1), 16) & -parseInt(digits.slice(-1), 16)); // trailing zero bits of the last digit
  const mantissa = (BigInt(`0x${digits}`) >> BigInt(odd)).toString(16);
  return `${sign}0x${mantissa}p${4 * (hex.length - digits.length) + odd - SCALE_BITS}`;
}

const EXACT = /^(-?)0x([0-9a-f]*[13579bdf])p(-?\d{1,4})$/;

/** Parses formatExact's text back to the scaled integer; `where` names the value in the error. */
export function parseExact(text: unknown, where: string): bigint {
  if (text === '0') return 0n;
  const m = typeof text === 'string' ? EXACT.exec(text) : null;
  const exponent = m ? Number(m[3]) : NaN;
  check(m != null && exponent >= -SCALE_BITS && exponent <= 1100, `${where}: not an exact sum (${JSON.stringify(text)})`);
  const value = BigInt(`0x${m[2]}`) << BigInt(exponent + SCALE_BITS);
  return m[1] ? -value : value;
}

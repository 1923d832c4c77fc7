/** The windowing protocol of `compact eval --text`: every next-token prediction scored exactly once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeWindows } from '../src/eval/text-metrics.js';

const ids = Array.from({ length: 11 }, (_, i) => 100 + i);

test('non-overlapping windows: ids[s : s+w+1], step w', () => {
  const windows = makeWindows(ids, 4, 4);
  assert.deepEqual(
    windows.map((w) => w.inputs),
    [
      [100, 101, 102, 103],
      [104, 105, 106, 107],
      [108, 109],
    ],
  );
  assert.deepEqual(
    windows.map((w) => [...w.targets]),
    [
      [101, 102, 103, 104],
      [105, 106, 107, 108],
      [109, 110],
    ],
  );
});

test('strided windows score only positions not scored before', () => {
  const windows = makeWindows(ids, 4, 2);
  const scored = windows.flatMap((w) => [...w.targets].filter((t) => t >= 0));
  assert.deepEqual(scored, ids.slice(1));
  assert.deepEqual([...windows[1].targets], [-1, -1, 105, 106]);
});

test('bad windowing is a user error', () => {
  assert.throws(() => makeWindows(ids, 0, 1), /--window must be a positive integer/);
  assert.throws(() => makeWindows(ids, 4, 5), /--stride must be an integer in \[1, window=4\]/);
  assert.throws(() => makeWindows([1], 4, 4), /at least 2 are needed/);
});

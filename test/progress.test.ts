/**
 * Progress bars tell the truth (issue 11): one labelled bar per stage, no 100 % while a stage is
 * still open (its last unit may be followed by work it does not count), an ETA only once a unit
 * has finished, computed from the finished ones. Driven with a fake clock and a fake terminal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeProgressBars, duration, progressBar, stageLine } from '../src/cli/progress.js';

/** A fake terminal: records every drawn line (cli-progress moves to column 1 before each draw). */
function fakeTerminal() {
  let raw = '';
  const stream = {
    isTTY: true,
    columns: 160,
    write(chunk: string | Uint8Array) {
      raw += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    },
  };
  // eslint-disable-next-line no-control-regex
  const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
  return {
    stream,
    /** Every drawn line, in order, with the newline that closes a stage kept as its own entry. */
    draws: () =>
      raw
        .split(/\x1b\[1G|(\n)/)
        .filter((s) => s != null)
        .map(strip)
        .filter((s) => s.length > 0),
  };
}

function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('progress: one labelled bar per stage, 100 % only when the stage is over, ETA after the first finished unit', () => {
  const term = fakeTerminal();
  const clock = fakeClock();
  const bar = progressBar('prune', true, { stream: term.stream, now: clock.now, live: false });
  // calibrate: 4 layers of 10 s each, reported only when finished (as prune does)
  for (let layer = 1; layer <= 4; layer++) {
    clock.advance(10_000);
    bar.update(layer, 4, 'calibrate');
  }
  // search: starts at 0, first candidate takes 30 s
  clock.advance(1_000);
  bar.update(0, 3, 'search');
  clock.advance(30_000);
  bar.update(1, 3, 'search');
  clock.advance(30_000);
  bar.update(3, 3, 'search'); // done counting, but the stage is not over yet
  clock.advance(5_000);
  bar.update(10, 10, 'write');
  clock.advance(60_000); // the silent tail: model card, manifest, GGUF… still "write"
  bar.stop();
  const draws = term.draws();
  const stageOf = (line: string) => /^prune: (\w+) /.exec(line)?.[1];
  // Stages in order, each on its own line (closed by a newline).
  const order = draws.filter((l) => l !== '\n').map(stageOf);
  assert.ok(
    order.every((s) => s != null),
    draws.join('\n'),
  );
  assert.deepEqual([...new Set(order)], ['calibrate', 'search', 'write']);
  assert.equal(draws.filter((l) => l === '\n').length, 3, 'each stage ends its line');
  // 100 % only on the last line of each stage, drawn when the stage closed.
  const lastOfStage = draws.map((l, i) => draws[i + 1] === '\n');
  draws.forEach((l, i) => {
    if (l === '\n') return;
    if (lastOfStage[i]) assert.match(l, / 100 % \|/, l);
    else assert.doesNotMatch(l, / 100 % /, `an open stage claimed 100 %: ${l}`);
  });
  // The search stage at 3/3 (open) says it is finishing, not done.
  assert.ok(
    draws.some((l) => /^prune: search .* 99 % \| 3\/3 \| 1m 00s \+ 0 s finishing$/.test(l)),
    draws.join('\n'),
  );
  // The write stage's open line: 99 %, and its closed line counts the tail: 65 s.
  assert.ok(draws.includes('prune: write [████████████████████████] 100 % | 10/10 | 1m 05s'), draws.join('\n'));
  // No ETA before the first finished unit; then elapsed / done × left.
  const search0 = draws.find((l) => /^prune: search .* 0\/3/.test(l))!;
  assert.match(search0, /ETA …$/);
  const search1 = draws.find((l) => /^prune: search .* 1\/3/.test(l))!;
  assert.match(search1, /30 s, ETA 1m 00s$/);
  // calibrate reported no 0: its clock started at creation, so after 1 layer (10 s) 3 are left: 30 s.
  assert.match(
    draws.find((l) => /calibrate .* 1\/4/.test(l))!,
    /10 s, ETA 30 s$/,
  );
});

test('progress: compare-style cells: ETA from the first finished cell, the note names the cell', () => {
  const term = fakeTerminal();
  const clock = fakeClock();
  const bar = progressBar('compare', true, { stream: term.stream, now: clock.now, live: false });
  bar.update(0, 1, 'dense model');
  clock.advance(2_000);
  bar.update(1, 1, 'dense model');
  bar.update(0, 4, 'cells', 'compact @ 0.1');
  clock.advance(40_000);
  bar.update(1, 4, 'cells', 'compact @ 0.2');
  clock.advance(20_000);
  bar.update(2, 4, 'cells', 'shortgpt @ 0.1');
  bar.stop();
  const draws = term.draws();
  assert.match(
    draws.find((l) => l.includes('compact @ 0.1'))!,
    /^compare: cells .*\| 0\/4 \| compact @ 0\.1 \| 0 s, ETA …$/,
  );
  assert.match(
    draws.find((l) => l.includes('compact @ 0.2'))!,
    /\| 1\/4 \| compact @ 0\.2 \| 40 s, ETA 2m 00s$/,
  );
  assert.match(
    draws.find((l) => l.includes('shortgpt @ 0.1'))!,
    /\| 2\/4 \| shortgpt @ 0\.1 \| 1m 00s, ETA 1m 00s$/,
  );
  // Stopped before its total: the closed bar says where it stopped, not 100 %.
  assert.equal(draws.at(-2), 'compare: cells [████████████░░░░░░░░░░░░]  50 % | 2/4 | 1m 00s');
  assert.equal(draws.filter((l) => / 100 % /.test(l)).length, 1, 'only the finished dense stage');
});

test('progress: silent when disabled (--json) or when the stream is not a terminal', () => {
  for (const [enabled, isTTY] of [
    [false, true],
    [true, false],
  ] as const) {
    const term = fakeTerminal();
    term.stream.isTTY = isTTY;
    const bar = progressBar('eval', enabled, { stream: term.stream, live: false });
    bar.update(1, 2);
    bar.stop();
    assert.deepEqual(term.draws(), []);
  }
});

test('progress: line format', () => {
  const s = { label: 'eval', done: 1, total: 3, start: 0, last: 2_000, closed: false };
  assert.equal(stageLine(s, 5_000), 'eval [████████░░░░░░░░░░░░░░░░]  33 % | 1/3 | 5 s, ETA 10 s');
  assert.equal(stageLine({ ...s, done: 3 }, 5_000), 'eval [███████████████████████░]  99 % | 3/3 | 2 s + 3 s finishing');
  assert.equal(stageLine({ ...s, done: 3, closed: true }, 5_000), 'eval [████████████████████████] 100 % | 3/3 | 5 s');
  // Narrow terminals: the bar shrinks first, then the line is cut.
  assert.equal(stageLine(s, 5_000, 50), 'eval [█████░░░░░░░░░░]  33 % | 1/3 | 5 s, ETA 10 s');
  assert.equal(stageLine(s, 5_000, 43), 'eval [██░░░░░░]  33 % | 1/3 | 5 s, ETA 10 s');
  assert.equal(stageLine(s, 5_000, 30), 'eval [██░░░░░░]  33 % | 1/3 | ');
  assert.deepEqual([duration(0.4), duration(59.6), duration(125), duration(3725)], ['0 s', '1m 00s', '2m 05s', '1h 02m']);
});

test('progress: closeProgressBars ends an open bar where it stands (an error message then starts its own line)', () => {
  const term = fakeTerminal();
  const clock = fakeClock();
  const bar = progressBar('prune', true, { stream: term.stream, now: clock.now, live: false });
  clock.advance(3_000);
  bar.update(2, 5, 'calibrate');
  closeProgressBars();
  const draws = term.draws();
  assert.equal(draws.at(-1), '\n');
  assert.equal(draws.at(-2), 'prune: calibrate [█████████░░░░░░░░░░░░░░░]  40 % | 2/5 | 3 s');
  bar.stop(); // already closed: draws nothing more
  assert.deepEqual(term.draws(), draws);
});

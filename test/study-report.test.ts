/**
 * The study report's HTML, checked without a browser (npm run check:report renders it in
 * headless Chromium): no animation, a marker (point style and colour) per method, notes for methods with no
 * reachable cell and for ShortGPT's real ratios, a rounded table instead of raw CSV, no NaN.
 * Input: the committed stories260K study (docs/study/stories260K/study.json), plus edge cases.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { studyHtml, studyMarkdown, studyNotes, type StudyMeta } from '../src/study/report.js';
import { failedRow, type StudyRow } from '../src/study/study.js';

const study = JSON.parse(readFileSync('docs/study/stories260K/study.json', 'utf8')) as StudyMeta & { rows: StudyRow[] };
const { rows, ...meta } = study;

interface ChartConfig {
  type: string;
  data: {
    labels?: string[];
    datasets: {
      label: string;
      pointStyle?: string;
      borderColor?: string;
      pointRadius?: number;
      borderDash?: number[];
      data: (number | { x: number; y: number })[];
    }[];
  };
  options: { animation: unknown; plugins: { title: { text: string }; legend?: { labels?: { usePointStyle?: boolean } } } };
}

/** The chart configurations the page hands to Chart.js. */
function chartsOf(html: string): ChartConfig[] {
  const m = /<script>const charts = (.*);\n/.exec(html);
  assert.ok(m, 'the page defines its charts');
  return JSON.parse(m[1]) as ChartConfig[];
}

test('study report: no animation, distinct markers, legend with markers, notes, rounded table (stories260K)', () => {
  const html = studyHtml(rows, meta);
  const charts = chartsOf(html);
  assert.equal(charts.length, 2 + 3 + 1, 'two texts, three agreement measures, the breakdown');
  for (const c of charts) assert.equal(c.options.animation, false, c.options.plugins.title.text);
  assert.equal(html.match(/<canvas /g)?.length, charts.length);

  const methods = [...new Set(rows.slice(1).map((r) => r.method))];
  for (const c of charts.filter((c) => c.type === 'line')) {
    assert.deepEqual(
      c.data.datasets.map((d) => d.label),
      methods.map((m) => (m === 'vocab-only' ? 'vocab-only (no cell reachable)' : m)),
    );
    // Chart.js has ten point styles and the study eleven methods: no two share style and colour.
    const markers = c.data.datasets.map((d) => `${d.pointStyle} ${d.borderColor}`);
    assert.equal(new Set(markers).size, methods.length, `a marker per method: ${markers.join(', ')}`);
    assert.equal(c.options.plugins.legend?.labels?.usePointStyle, true);
    // ffn-only coincides with compact-auto on stories260K (the search takes nothing from the vocabulary).
    const [auto, ffn] = ['compact-auto', 'ffn-only'].map((m) => c.data.datasets.find((d) => d.label === m)!);
    assert.notEqual(auto.pointStyle, ffn.pointStyle);
    assert.ok(ffn.pointRadius! > auto.pointRadius! && ffn.borderDash!.length > 0, 'the lower line peeks out: bigger marker, dashed');
    assert.equal(c.data.datasets.find((d) => d.label.startsWith('vocab-only'))!.data.length, 0, 'no line for a method with no cell');
    for (const d of c.data.datasets)
      for (const p of d.data) assert.ok(typeof p === 'object' && Number.isFinite(p.x) && Number.isFinite(p.y));
  }
  // ShortGPT's points sit at the share it removed, not at its target.
  const shortgpt = charts[0].data.datasets.find((d) => d.label === 'shortgpt')!.data as { x: number }[];
  assert.deepEqual(
    shortgpt.map((p) => p.x.toFixed(1)),
    ['0.0', '17.5', '17.5', '34.9', '34.9', '52.4'],
  );

  // Notes: vocab-only has no reachable cell; ShortGPT's real ratios.
  assert.match(
    html,
    /<li data-method="vocab-only" data-kind="unreachable">vocab-only: no cell is reachable, so it has no line \(targets 10\.0 %, 20\.0 %, 30\.0 %, 40\.0 %, 50\.0 %\); at 10\.0 %: --vocab-share 1 asks/,
  );
  assert.match(
    html,
    /<li data-method="shortgpt" data-kind="granularity">shortgpt removes whole layers .*10\.0 % → 17\.5 % \(4 of 5 layers kept\), 20\.0 % → 17\.5 % \(4 of 5 layers kept\), 30\.0 % → 34\.9 % \(3 of 5 layers kept\), 40\.0 % → 34\.9 % \(3 of 5 layers kept\), 50\.0 % → 52\.4 % \(2 of 5 layers kept\)/,
  );

  // A rounded table, one row per cell; no raw CSV.
  assert.doesNotMatch(html, /<pre>/);
  const table = /<table id="numbers">([\s\S]*?)<\/table>/.exec(html)![1];
  assert.equal(table.match(/<tr[ >]/g)!.length, 1 + rows.length);
  assert.match(
    table,
    /<tr data-method="compact"><td>compact<\/td><td>10\.0 %<\/td><td>10\.1 %<\/td><td>445<\/td><td>149<\/td><td>5<\/td><td>233,664<\/td><td>2\.9396 \(\+1\.665\)<\/td>/,
  );
  assert.match(
    table,
    /<tr class="unreachable" data-method="vocab-only"><td>vocab-only<\/td><td>10\.0 %<\/td><td colspan="\d+">not reachable: --vocab-share 1 asks/,
  );
  assert.doesNotMatch(table, /\d\.\d{5,}/, 'every number rounded');
  for (const word of ['NaN', 'undefined', 'Infinity']) assert.ok(!html.replace(/<script>[\s\S]*?<\/script>/g, '').includes(word), word);

  // The Markdown states the real ratios too.
  assert.match(studyMarkdown(rows, meta), /Note: shortgpt removes whole layers .*50\.0 % → 52\.4 % \(2 of 5 layers kept\)/);
});

test('study report: a non-finite value is left out of the plots, never drawn as NaN; partly reachable methods get a note', () => {
  const broken = structuredClone(rows);
  broken.find((r) => r.method === 'compact' && r.ratio === 0.3)!.bitsPerByte.heldout_10pct = Number.NaN;
  const html = studyHtml(broken, meta);
  const compact = chartsOf(html)[0].data.datasets.find((d) => d.label === 'compact')!;
  assert.equal(compact.data.length, 5, 'dense + 4 of 5 cells');
  assert.ok(!/NaN|null/.test(JSON.stringify(chartsOf(html).map((c) => c.data))));

  // Only the first ratios reachable: the note says where the line stops.
  const partial = rows.map((r) => (r.method === 'ffn-only' && r.ratio > 0.2 ? failedRow(r.method, r.ratio, 'unreachable here') : r));
  const note = studyNotes(partial).find((n) => n.method === 'ffn-only')!;
  assert.equal(note.kind, 'partial');
  assert.equal(
    note.text,
    'ffn-only: targets 30.0 %, 40.0 %, 50.0 % not reachable, so its line stops at 19.9 %; at 30.0 %: unreachable here',
  );
});

/**
 * Study reports: JSON and CSV (numbers), Markdown (a table), and one self-contained HTML page
 * with Chart.js inlined, viewable offline: quality vs parameters removed per method, the
 * parameter breakdown before and after, notes on cells that differ from their target or could
 * not be produced, and the numbers as a rounded table (the same cells as the Markdown).
 * The page draws without animation: a screenshot taken at any moment shows the final values.
 * `npm run check:report` renders it in headless Chromium and checks what it drew.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { STUDY_METHODS, type StudyMethod } from './methods.js';
import type { StudyRow } from './study.js';

export interface StudyMeta {
  model: string;
  calibration: string;
  /** What agreement with the dense model was measured on (undefined: not measured). */
  agreement?: string;
  command: string;
  version: string;
}

const pct = (x: number | null) => (x == null ? '' : `${(100 * x).toFixed(1)} %`);
const int = (x: number | null | undefined) => (x == null ? '' : x.toLocaleString('en-US'));
const textNames = (rows: StudyRow[]) => Object.keys(rows[0].bitsPerByte);

export function studyCsv(rows: StudyRow[]): string {
  const texts = textNames(rows);
  const header = [
    'method',
    'target_ratio',
    'removed_ratio',
    'vocab',
    'ffn',
    'layers',
    'parameters',
    ...texts.map((t) => `bpb_${t}`),
    'greedy_agreement',
    'top1_agreement',
    'kl',
    'kl_compared_share',
    'prune_seconds',
    'error',
  ];
  const cell = (v: unknown) => (v == null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
  const lines = rows.map((r) =>
    [
      r.method,
      r.ratio,
      r.removedRatio,
      r.vocab,
      r.ffn,
      r.layers,
      r.parameters?.total,
      ...texts.map((t) => r.bitsPerByte[t]),
      r.agreement?.greedy,
      r.agreement?.top1,
      r.agreement?.kl,
      r.agreement?.comparedShare,
      r.pruneSeconds,
      r.error,
    ]
      .map(cell)
      .join(','),
  );
  return `${[header.join(','), ...lines].join('\n')}\n`;
}

/** The table both reports show: one row per cell, numbers rounded as they are read. */
interface Table {
  header: string[];
  rows: ({ row: StudyRow; cells: string[] } | { row: StudyRow; error: string })[];
}

function studyTable(rows: StudyRow[], meta: StudyMeta): Table {
  const texts = textNames(rows);
  const dense = rows[0];
  const agreement = meta.agreement != null;
  const agreementCells = (r: StudyRow) =>
    agreement
      ? r.agreement
        ? [r.agreement.greedy.toFixed(3), pct(r.agreement.top1), r.agreement.kl.toFixed(4), pct(r.agreement.comparedShare)]
        : ['', '', '', '']
      : [];
  const seconds = (r: StudyRow) => (r.pruneSeconds == null ? '' : r.pruneSeconds.toFixed(1));
  const bpb = (r: StudyRow, t: string) =>
    r === dense ? r.bitsPerByte[t].toFixed(4) : `${r.bitsPerByte[t].toFixed(4)} (${signed(r.bitsPerByte[t] - dense.bitsPerByte[t])})`;
  return {
    header: [
      'method',
      'target',
      'removed',
      'V′',
      'I′',
      'layers',
      'parameters',
      ...texts.map((t) => `bpb ${t}`),
      ...(agreement ? ['greedy', 'top-1', 'KL', 'compared'] : []),
      'prune s',
    ],
    rows: rows.map((r) =>
      r.error
        ? { row: r, error: r.error }
        : {
            row: r,
            cells: [
              r.method,
              pct(r.ratio),
              pct(r.removedRatio),
              int(r.vocab),
              int(r.ffn),
              String(r.layers),
              int(r.parameters?.total),
              ...texts.map((t) => bpb(r, t)),
              ...agreementCells(r),
              seconds(r),
            ],
          },
    ),
  };
}

/** A remark on one method's cells, shown beside the plots and under the table. */
export interface StudyNote {
  method: string;
  /** unreachable: no cell could be produced; partial: some could not; granularity: the share removed differs from the target. */
  kind: 'unreachable' | 'partial' | 'granularity';
  text: string;
}

const methodOf = (name: string): StudyMethod | undefined => STUDY_METHODS.find((m) => m.name === name);
const methodsIn = (rows: StudyRow[]) => [...new Set(rows.slice(1).map((r) => r.method))];

/** What a reader must know to read the plots right: methods with no (or few) reachable cells, and shares removed that differ from the target. */
export function studyNotes(rows: StudyRow[]): StudyNote[] {
  const notes: StudyNote[] = [];
  for (const method of methodsIn(rows)) {
    const cells = rows.filter((r) => r.method === method);
    const failed = cells.filter((r) => r.error);
    const reached = cells.filter((r) => !r.error);
    if (failed.length) {
      const targets = failed.map((r) => pct(r.ratio)).join(', ');
      notes.push(
        reached.length === 0
          ? {
              method,
              kind: 'unreachable',
              text: `${method}: no cell is reachable, so it has no line (targets ${targets}); at ${pct(failed[0].ratio)}: ${failed[0].error}`,
            }
          : {
              method,
              kind: 'partial',
              text: `${method}: ${failed.length === 1 ? 'target' : 'targets'} ${targets} not reachable, so its line stops at ${pct(Math.max(...reached.map((r) => r.removedRatio!)))}; at ${pct(failed[0].ratio)}: ${failed[0].error}`,
            },
      );
    }
    const granularity = methodOf(method)?.granularity;
    const off = reached.filter((r) => Math.abs(r.removedRatio! - r.ratio) >= 0.0005);
    if (granularity && off.length) {
      const layers = rows[0].layers;
      const cell = (r: StudyRow) =>
        `${pct(r.ratio)} → ${pct(r.removedRatio)}${r.layers != null && layers != null && r.layers !== layers ? ` (${r.layers} of ${layers} layers kept)` : ''}`;
      notes.push({
        method,
        kind: 'granularity',
        text: `${method} ${granularity}: target → removed ${reached.map(cell).join(', ')}. Its points are plotted at the share removed.`,
      });
    }
  }
  return notes;
}

export function studyMarkdown(rows: StudyRow[], meta: StudyMeta): string {
  const table = studyTable(rows, meta);
  const agreement = meta.agreement != null;
  const right = table.header.slice(1).map(() => '---:');
  const lines = [
    `Model \`${meta.model}\`; calibration ${meta.calibration}. Bits per byte: lower is better (Δ vs dense in parentheses).` +
      (agreement
        ? ` Agreement with the dense model on ${meta.agreement} (definitions: docs/agreement.md): greedy = mean common prefix of the greedy continuations (1 = identical); at the positions where the tokenizations coincide ("compared" = their share), top-1 = same most likely next token, KL(dense ‖ pruned) in nats.`
        : ''),
    '',
    `| ${table.header.join(' | ')} |`,
    `| --- | ${right.join(' | ')} |`,
    ...table.rows.map((t) =>
      'error' in t ? `| ${t.row.method} | ${pct(t.row.ratio)} | — |${' |'.repeat(table.header.length - 3)}` : `| ${t.cells.join(' | ')} |`,
    ),
  ];
  const failed = rows.filter((r) => r.error);
  if (failed.length)
    lines.push('', 'Cells that could not be produced:', '', ...failed.map((r) => `* ${r.method} @ ${pct(r.ratio)}: ${r.error}`));
  const granularity = studyNotes(rows).filter((n) => n.kind === 'granularity');
  if (granularity.length) lines.push('', ...granularity.map((n) => `Note: ${n.text}`));
  lines.push('', `Command: \`${meta.command}\` (compact ${meta.version}).`);
  return `${lines.join('\n')}\n`;
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
const escape = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
/** A fallback look for a method missing from STUDY_METHODS (a report of an older version). */
const FALLBACK_STYLE: StudyMethod['style'] = { color: '#333333', point: 'circle', radius: 4, dash: [] };

export function studyHtml(rows: StudyRow[], meta: StudyMeta): string {
  // The UMD build, inlined so the page works offline (the package does not export its path).
  const chartJs = readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const texts = textNames(rows);
  const methods = methodsIn(rows);
  const dense = rows[0];
  const notes = studyNotes(rows);
  const unreachable = new Set(notes.filter((n) => n.kind === 'unreachable').map((n) => n.method));
  const finite = (x: number | undefined): x is number => x != null && Number.isFinite(x);
  /** One line per method: the quality measure against the percentage of parameters removed, from the dense point on. */
  const lineChart = (title: string, yLabel: string, value: (r: StudyRow) => number | undefined) => ({
    type: 'line',
    data: {
      datasets: methods.map((m) => {
        const style = methodOf(m)?.style ?? FALLBACK_STYLE;
        const cells = rows.filter((r) => r.method === m && !r.error);
        return {
          label: unreachable.has(m) ? `${m} (no cell reachable)` : m,
          borderColor: style.color,
          // See-through markers: a marker under another of a different shape still shows.
          backgroundColor: `${style.color}33`,
          borderWidth: 2,
          borderDash: style.dash,
          pointStyle: style.point,
          pointRadius: style.radius,
          pointHoverRadius: style.radius + 2,
          pointBorderWidth: 1.5,
          // Dashed lines are drawn over solid ones (Chart.js draws lower `order` on top), so a dashed line on a solid one shows both colours.
          order: style.dash.length ? 0 : 1,
          data:
            cells.length === 0
              ? []
              : [dense, ...cells].filter((r) => finite(value(r))).map((r) => ({ x: 100 * r.removedRatio!, y: value(r)! })),
        };
      }),
    },
    options: {
      animation: false,
      aspectRatio: 1.6,
      plugins: { title: { display: true, text: title }, legend: { labels: { usePointStyle: true } } },
      scales: {
        x: { type: 'linear', min: 0, title: { display: true, text: 'parameters removed (%)' } },
        y: { title: { display: true, text: yLabel } },
      },
    },
  });
  const qualityCharts = texts.map((text) =>
    lineChart(`bits per byte on ${text} (lower is better)`, 'bits per byte', (r) => r.bitsPerByte[text]),
  );
  if (meta.agreement) {
    qualityCharts.push(
      lineChart(
        `greedy agreement with the dense model on ${meta.agreement} (higher is better)`,
        'mean common prefix / C',
        (r) => r.agreement?.greedy,
      ),
    );
    qualityCharts.push(
      lineChart(
        `same most likely next token as the dense model on ${meta.agreement} (higher is better)`,
        'share of positions',
        (r) => r.agreement?.top1,
      ),
    );
    qualityCharts.push(lineChart(`KL(dense ‖ pruned) on ${meta.agreement} (lower is better)`, 'nats per position', (r) => r.agreement?.kl));
  }
  const maxRatio = Math.max(...rows.map((r) => r.ratio));
  const breakdownRows = [dense, ...rows.filter((r) => r.ratio === maxRatio && !r.error)];
  const parts = [
    ['embedding + LM head', (r: StudyRow) => r.parameters!.parts.embedding + r.parameters!.parts.lmHead],
    ['attention', (r: StudyRow) => r.parameters!.parts.attention],
    ['FFN', (r: StudyRow) => r.parameters!.parts.ffn],
    ['norms + other', (r: StudyRow) => r.parameters!.parts.norms + r.parameters!.parts.other],
  ] as const;
  const partColors = ['#4e79a7', '#f28e2b', '#59a14f', '#bab0ac'];
  const breakdownChart = {
    type: 'bar',
    data: {
      labels: breakdownRows.map((r) => (r === dense ? 'dense' : `${r.method} (${pct(r.removedRatio)})`)),
      datasets: parts.map(([label, f], i) => ({ label, backgroundColor: partColors[i], data: breakdownRows.map(f) })),
    },
    options: {
      animation: false,
      aspectRatio: 1.6,
      plugins: {
        title: {
          display: true,
          text: `parameters by part: dense and each method's ${pct(maxRatio)} cell (share actually removed in brackets)`,
        },
      },
      scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'parameters' } } },
    },
  };
  const charts = [...qualityCharts, breakdownChart];
  const table = studyTable(rows, meta);
  const tableHtml = [
    '<table id="numbers">',
    `<thead><tr>${table.header.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead>`,
    '<tbody>',
    ...table.rows.map((t) =>
      'error' in t
        ? `<tr class="unreachable" data-method="${escape(t.row.method)}"><td>${escape(t.row.method)}</td><td>${pct(t.row.ratio)}</td><td colspan="${table.header.length - 2}">not reachable: ${escape(t.error)}</td></tr>`
        : `<tr data-method="${escape(t.row.method)}">${t.cells.map((c) => `<td>${escape(c)}</td>`).join('')}</tr>`,
    ),
    '</tbody></table>',
  ].join('\n');
  const legend = methods.map((m) => `<li><b>${escape(m)}</b>: ${escape(methodOf(m)?.description ?? '')}</li>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>compact study: ${escape(meta.model)}</title>
<style>
body{font:14px system-ui,sans-serif;max-width:1280px;margin:1.5em auto;padding:0 1em;color:#222}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1em 2em}
.charts figure{margin:0}
#notes li{margin:.3em 0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}
td:first-child,th:first-child{text-align:left}
tr.unreachable td{color:#777}
tr.unreachable td:last-child{text-align:left;white-space:normal}
</style>
</head><body>
<h1>compact study: ${escape(meta.model)}</h1>
<p>Calibration: ${escape(meta.calibration)}. Command: <code>${escape(meta.command)}</code> (compact ${escape(meta.version)}).
Every point is one pruned model, plotted at the share of parameters it actually removed; each line starts at the dense model (0 %).</p>
<section id="notes"><h2>Notes</h2>
<ul>
${notes.length ? notes.map((n) => `<li data-method="${escape(n.method)}" data-kind="${n.kind}">${escape(n.text)}</li>`).join('\n') : '<li>Every cell was reachable at its target.</li>'}
</ul></section>
<div class="charts">
${charts.map((c, i) => `<figure><canvas id="chart${i}" role="img" aria-label="${escape(c.options.plugins.title.text)}"></canvas></figure>`).join('\n')}
</div>
<h2>Methods</h2>
<ul>
${legend}
</ul>
<h2>Numbers</h2>
<p>Rounded for reading (bits per byte with Δ vs dense in parentheses); full precision in <a href="study.csv">study.csv</a> and <a href="study.json">study.json</a> beside this page.</p>
${tableHtml}
<script>${chartJs}</script>
<script>const charts = ${JSON.stringify(charts).replaceAll('<', '\\u003c')};
// The legend in method order (Chart.js sorts it by drawing order otherwise); a function cannot travel in JSON.
charts.forEach((c, i) => {
  if (c.type === 'line') c.options.plugins.legend.labels.sort = (a, b) => a.datasetIndex - b.datasetIndex;
  new Chart(document.getElementById('chart' + i), c);
});</script>
</body></html>
`;
}

/**
 * Study reports: JSON and CSV (numbers), Markdown (a table), and one self-contained HTML page
 * with Chart.js inlined, viewable offline: quality vs parameters removed per method, and the
 * parameter breakdown before and after.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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
  const header = ['method', 'target_ratio', 'removed_ratio', 'vocab', 'ffn', 'layers', 'parameters', ...texts.map((t) => `bpb_${t}`), 'greedy_agreement', 'top1_agreement', 'kl', 'kl_compared_share', 'prune_seconds', 'error'];
  const cell = (v: unknown) => (v == null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
  const lines = rows.map((r) => [r.method, r.ratio, r.removedRatio, r.vocab, r.ffn, r.layers, r.parameters?.total, ...texts.map((t) => r.bitsPerByte[t]), r.agreement?.greedy, r.agreement?.top1, r.agreement?.kl, r.agreement?.comparedShare, r.pruneSeconds, r.error].map(cell).join(','));
  return `${[header.join(','), ...lines].join('\n')}\n`;
}

export function studyMarkdown(rows: StudyRow[], meta: StudyMeta): string {
  const texts = textNames(rows);
  const dense = rows[0];
  const agreement = meta.agreement != null;
  const agreementCells = (r: StudyRow) =>
    agreement ? (r.agreement ? [r.agreement.greedy.toFixed(3), pct(r.agreement.top1), r.agreement.kl.toFixed(4), pct(r.agreement.comparedShare)] : ['', '', '', '']) : [];
  const seconds = (r: StudyRow) => (r.pruneSeconds == null ? '' : r.pruneSeconds.toFixed(1));
  const lines = [
    `Model \`${meta.model}\`; calibration ${meta.calibration}. Bits per byte: lower is better (Δ vs dense in parentheses).` +
      (agreement ? ` Agreement with the dense model on ${meta.agreement} (definitions: docs/agreement.md): greedy = mean common prefix of the greedy continuations (1 = identical); at the positions where the tokenizations coincide ("compared" = their share), top-1 = same most likely next token, KL(dense ‖ pruned) in nats.` : ''),
    '',
    `| method | target | removed | V′ | I′ | layers | parameters | ${texts.map((t) => `bpb ${t}`).join(' | ')} |${agreement ? ' greedy | top-1 | KL | compared |' : ''} prune s |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ${texts.map(() => '---:').join(' | ')} |${agreement ? ' ---: | ---: | ---: | ---: |' : ''} ---: |`,
    ...rows.map((r) =>
      r.error
        ? `| ${r.method} | ${pct(r.ratio)} | — | | | | | ${texts.map(() => '').join(' | ')} |${agreement ? ' | | | |' : ''} |`
        : `| ${r.method} | ${pct(r.ratio)} | ${pct(r.removedRatio)} | ${int(r.vocab)} | ${int(r.ffn)} | ${r.layers} | ${int(r.parameters?.total)} | ${[
            ...texts.map((t) => (r === dense ? r.bitsPerByte[t].toFixed(4) : `${r.bitsPerByte[t].toFixed(4)} (${signed(r.bitsPerByte[t] - dense.bitsPerByte[t])})`)),
            ...agreementCells(r),
            seconds(r),
          ].join(' | ')} |`,
    ),
  ];
  const failed = rows.filter((r) => r.error);
  if (failed.length) lines.push('', 'Cells that could not be produced:', '', ...failed.map((r) => `* ${r.method} @ ${pct(r.ratio)}: ${r.error}`));
  lines.push('', `Command: \`${meta.command}\` (compact ${meta.version}).`);
  return `${lines.join('\n')}\n`;
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;

export function studyHtml(rows: StudyRow[], meta: StudyMeta): string {
  // The UMD build, inlined so the page works offline (the package does not export its path).
  const chartJs = readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const texts = textNames(rows);
  const methods = [...new Set(rows.slice(1).map((r) => r.method))];
  const dense = rows[0];
  const palette = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];
  /** One line per method: the quality measure against the percentage of parameters removed, from the dense point on. */
  const lineChart = (title: string, yLabel: string, value: (r: StudyRow) => number | undefined) => ({
    type: 'line',
    data: {
      datasets: methods.map((m, i) => ({
        label: m,
        borderColor: palette[i % palette.length],
        backgroundColor: palette[i % palette.length],
        data: [dense, ...rows.filter((r) => r.method === m && !r.error)].filter((r) => value(r) != null).map((r) => ({ x: 100 * r.removedRatio!, y: value(r) })),
      })),
    },
    options: { plugins: { title: { display: true, text: title } }, scales: { x: { type: 'linear', title: { display: true, text: 'parameters removed (%)' } }, y: { title: { display: true, text: yLabel } } } },
  });
  const qualityCharts = texts.map((text) => lineChart(`bits per byte on ${text} (lower is better)`, 'bits per byte', (r) => r.bitsPerByte[text]));
  if (meta.agreement) {
    qualityCharts.push(lineChart(`greedy agreement with the dense model on ${meta.agreement} (higher is better)`, 'mean common prefix / C', (r) => r.agreement?.greedy));
    qualityCharts.push(lineChart(`same most likely next token as the dense model on ${meta.agreement} (higher is better)`, 'share of positions', (r) => r.agreement?.top1));
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
  const breakdownChart = {
    type: 'bar',
    data: { labels: breakdownRows.map((r) => r.method), datasets: parts.map(([label, f], i) => ({ label, backgroundColor: palette[i], data: breakdownRows.map(f) })) },
    options: { plugins: { title: { display: true, text: `parameters by part: dense and each method at ${pct(maxRatio)}` } }, scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'parameters' } } } },
  };
  const charts = [...qualityCharts, breakdownChart];
  const escape = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>compact study: ${escape(meta.model)}</title>
<style>body{font:14px system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em}canvas{margin:1.5em 0}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>
</head><body>
<h1>compact study: ${escape(meta.model)}</h1>
<p>Calibration: ${escape(meta.calibration)}. Command: <code>${escape(meta.command)}</code> (compact ${escape(meta.version)}).</p>
${charts.map((_, i) => `<canvas id="chart${i}"></canvas>`).join('\n')}
<h2>Numbers</h2>
<pre>${escape(studyCsv(rows))}</pre>
<script>${chartJs}</script>
<script>const charts = ${JSON.stringify(charts)};
charts.forEach((c, i) => new Chart(document.getElementById('chart' + i), c));</script>
</body></html>
`;
}

/**
 * npm run check:report [-- REPORT.html … --out DIR --scale S --require]
 *
 * Renders each study report (default: docs/study/<model>/study.html) in headless Chromium and
 * checks what the page drew against the study.json beside it: one chart per measure plus the
 * parameter breakdown; every line chart's legend names every method, with a point style of its
 * own; every point is drawn where its value says (so the screenshot is not mid-animation) and the
 * canvases do not change afterwards; no NaN, undefined or Infinity anywhere; the rounded table has
 * one row per cell; methods with no reachable cell and ShortGPT's real ratios have their notes.
 * Writes a full-page screenshot per report to DIR (default .tmp/check-report/<model>.png).
 *
 * Without Chromium it says so and exits 0 (--require: exits 1): the test suite never needs a
 * browser; test/study-report.test.ts checks the generated HTML itself.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { StudyRow } from '../../src/study/study.js';
import { findChromium, Page } from './chromium.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string', default: '.tmp/check-report' },
    scale: { type: 'string', default: '1' },
    require: { type: 'boolean', default: false },
  },
});

const WIDTH = 1280;

/** What the page reports about itself (evaluated in the page). */
interface Drawn {
  charts: {
    type: string;
    title: string;
    animation: unknown;
    legend: { text: string; pointStyle: unknown }[];
    datasets: { label: string; pointStyle: unknown; radius: unknown; values: unknown[]; offBy: number }[];
    inked: number;
  }[];
  pixels: string[];
  table: { header: string[]; rows: string[][] };
  notes: { method: string; kind: string; text: string }[];
  text: string;
}

const INSPECT = `(() => {
  const charts = Object.values(Chart.instances).sort((a, b) => a.canvas.id.localeCompare(b.canvas.id, 'en', { numeric: true }));
  const inked = (canvas) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n / (canvas.width * canvas.height);
  };
  return {
    charts: charts.map((c) => ({
      type: c.config.type,
      title: c.options.plugins.title.text,
      animation: c.options.animation,
      legend: c.legend.legendItems.map((i) => ({ text: i.text, pointStyle: i.pointStyle })),
      datasets: c.data.datasets.map((d, k) => {
        const meta = c.getDatasetMeta(k);
        // How far the drawn points are from where their values put them (0 once any animation is over).
        let offBy = 0;
        if (c.config.type === 'line') d.data.forEach((v, j) => {
          const el = meta.data[j];
          offBy = Math.max(offBy, Math.abs(el.x - c.scales.x.getPixelForValue(v.x)), Math.abs(el.y - c.scales.y.getPixelForValue(v.y)));
        });
        return { label: d.label, pointStyle: d.pointStyle ?? null, radius: d.pointRadius ?? null, values: d.data, offBy };
      }),
      inked: inked(c.canvas),
    })),
    pixels: charts.map((c) => c.canvas.toDataURL()),
    table: {
      header: [...document.querySelectorAll('#numbers thead th')].map((th) => th.textContent),
      rows: [...document.querySelectorAll('#numbers tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
    },
    notes: [...document.querySelectorAll('#notes li[data-method]')].map((li) => ({ method: li.dataset.method, kind: li.dataset.kind, text: li.textContent })),
    text: document.body.innerText,
  };
})()`;

/** Every problem found in one report (empty: it passed). */
function problems(drawn: Drawn, later: string[], study: { rows: StudyRow[]; agreement?: string }): string[] {
  const out: string[] = [];
  const fail = (cond: boolean, what: string) => {
    if (!cond) out.push(what);
  };
  const { rows } = study;
  const methods = [...new Set(rows.slice(1).map((r) => r.method))];
  const texts = Object.keys(rows[0].bitsPerByte);
  const expectedCharts = texts.length + (study.agreement ? 3 : 0) + 1;
  fail(
    drawn.charts.length === expectedCharts,
    `${drawn.charts.length} charts, expected ${expectedCharts} (${texts.length} texts${study.agreement ? ' + 3 agreement' : ''} + breakdown)`,
  );
  const none = methods.filter((m) => rows.filter((r) => r.method === m).every((r) => r.error));
  for (const chart of drawn.charts) {
    fail(chart.animation === false, `"${chart.title}": animation is ${JSON.stringify(chart.animation)}, not false`);
    fail(chart.inked > 0.005, `"${chart.title}": canvas is blank (${(100 * chart.inked).toFixed(2)} % inked)`);
    for (const d of chart.datasets) {
      const bad = d.values.filter((v) => {
        const y = typeof v === 'number' ? v : (v as { y: unknown }).y;
        return typeof y !== 'number' || !Number.isFinite(y);
      });
      fail(bad.length === 0, `"${chart.title}" / ${d.label}: non-finite values ${JSON.stringify(bad)}`);
    }
    if (chart.type !== 'line') continue;
    const legend = chart.legend.map((l) => l.text);
    fail(
      JSON.stringify(legend) === JSON.stringify(methods.map((m) => (none.includes(m) ? `${m} (no cell reachable)` : m))),
      `"${chart.title}": legend ${JSON.stringify(legend)}, methods ${JSON.stringify(methods)}`,
    );
    const styles = chart.datasets.map((d) => `${d.pointStyle}`);
    fail(
      new Set(styles).size === styles.length && !styles.includes('null'),
      `"${chart.title}": point styles not distinct per method: ${styles.join(', ')}`,
    );
    fail(
      chart.legend.every((l, i) => l.pointStyle === chart.datasets[i].pointStyle),
      `"${chart.title}": the legend does not show the point styles`,
    );
    for (const d of chart.datasets)
      fail(d.offBy < 0.5, `"${chart.title}" / ${d.label}: points drawn ${d.offBy.toFixed(1)} px from their values (mid-animation?)`);
  }
  fail(JSON.stringify(drawn.pixels) === JSON.stringify(later), 'the canvases changed after the load event (animation?)');
  for (const word of ['NaN', 'undefined', 'Infinity', '[object Object]']) fail(!drawn.text.includes(word), `the page shows "${word}"`);
  fail(
    drawn.table.header[0] === 'method' && drawn.table.rows.length === rows.length,
    `numbers table: ${drawn.table.rows.length} rows, expected ${rows.length}`,
  );
  const longNumber = drawn.table.rows.flat().find((c) => /\d\.\d{5,}/.test(c));
  fail(longNumber == null, `numbers table is not rounded: "${longNumber}"`);
  for (const m of none)
    fail(
      drawn.notes.some((n) => n.method === m && n.kind === 'unreachable'),
      `no note says ${m} has no reachable cell`,
    );
  const shortgpt = rows.filter((r) => r.method === 'shortgpt' && !r.error && Math.abs(r.removedRatio! - r.ratio) >= 0.0005);
  if (shortgpt.length) {
    const note = drawn.notes.find((n) => n.method === 'shortgpt' && n.kind === 'granularity');
    fail(note != null, "no note states ShortGPT's real ratios");
    for (const r of shortgpt)
      fail(
        note?.text.includes(`${(100 * r.removedRatio!).toFixed(1)} %`) === true,
        `the ShortGPT note lacks ${(100 * r.removedRatio!).toFixed(1)} %`,
      );
  }
  return out;
}

const reports = positionals.length
  ? positionals
  : readdirSync('docs/study', { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join('docs/study', d.name, 'study.html')))
      .map((d) => join('docs/study', d.name, 'study.html'));
const chromium = findChromium();
if (!chromium) {
  console.log(
    `check:report: ${args.require ? 'FAILED (--require)' : 'SKIPPED'}: no Chromium found (install Debian's: apt-get install chromium, or set CHROMIUM=/path/to/chrome); ${reports.length} report(s) not checked in a browser`,
  );
  process.exit(args.require ? 1 : 0);
}

mkdirSync(args.out!, { recursive: true });
let failed = 0;
for (const report of reports) {
  const study = JSON.parse(readFileSync(join(dirname(report), 'study.json'), 'utf8')) as { rows: StudyRow[]; agreement?: string };
  const page = await Page.open(chromium, { width: WIDTH, height: 900 });
  try {
    await page.goto(pathToFileURL(resolve(report)).href);
    const drawn = await page.evaluate<Drawn>(INSPECT);
    await new Promise((r) => setTimeout(r, 700)); // longer than Chart.js's default animation (400 ms)
    const later = await page.evaluate<string[]>(
      `Object.values(Chart.instances).sort((a, b) => a.canvas.id.localeCompare(b.canvas.id, 'en', { numeric: true })).map((c) => c.canvas.toDataURL())`,
    );
    const found = [...problems(drawn, later, study), ...page.errors.map((e) => `page error: ${e}`)];
    const png = join(args.out!, `${basename(dirname(report))}.png`);
    writeFileSync(png, await page.screenshot(WIDTH, Number(args.scale)));
    const lineCharts = drawn.charts.filter((c) => c.type === 'line');
    console.log(
      `${found.length ? 'FAIL' : 'ok  '} ${report}: ${drawn.charts.length} charts (${lineCharts.length} line, legend ${lineCharts[0]?.legend.length ?? 0} methods), ` +
        `${drawn.table.rows.length} table rows, ${drawn.notes.length} notes; screenshot ${png}`,
    );
    for (const p of found) console.log(`     ${p}`);
    if (found.length) failed++;
  } finally {
    await page.close();
  }
}
console.log(`check:report: ${reports.length - failed} of ${reports.length} report(s) pass in ${basename(chromium)} (headless)`);
process.exitCode = failed ? 1 : 0;

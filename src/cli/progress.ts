/**
 * Progress bars on stderr: one labelled line per stage, with elapsed time and ETA. Silent when the
 * stream is not a terminal or with --json.
 *
 * Two promises the bars keep:
 * - 100 % means the stage is over. A stage whose last unit is done may still be finishing (writing
 *   the model card, the manifest, a GGUF, renaming into place), so an open stage shows at most
 *   99 % and "finishing"; only stop() or the next stage's first update draws 100 %.
 * - The ETA is measured, never guessed: none until the stage's first unit has finished, then the
 *   mean time per finished unit times the units left.
 *
 * cli-progress draws the line (cursor handling, redraws while nothing is reported, so elapsed time
 * and ETA keep moving); the text of the line is ours, from an injectable clock.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /**
   * `done` of `total` units of the current stage. A new `stage` name closes the previous stage's
   * bar (drawn at 100 % when it reached its total) and opens its own. `note` is shown beside the
   * count (e.g. the cell being worked on).
   */
  update(done: number, total: number, stage?: string, note?: string): void;
  /** Close the current bar: 100 % if it reached its total, else where it stopped. */
  stop(): void;
}

/** A terminal-like output: what cli-progress writes to. */
export type ProgressStream = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean; columns?: number };

export interface ProgressOptions {
  /** Default: process.stderr. Nothing is drawn unless `isTTY` is true. */
  stream?: ProgressStream;
  /** Milliseconds (default performance.now). */
  now?: () => number;
  /** Redraw between updates, so elapsed time and ETA move (default true; tests turn it off). */
  live?: boolean;
}

/** What one bar shows. */
export interface StageState {
  label: string;
  done: number;
  total: number;
  note?: string;
  /** When the stage's work began (ms). */
  start: number;
  /** When it last reported (ms). */
  last: number;
  /** Closed by stop() or by the next stage. */
  closed: boolean;
  /** When it ended (ms): for a stage closed by the next one, its last update (the gap is the next stage's). */
  end?: number;
}

const BAR_WIDTH = 24;
const MIN_BAR_WIDTH = 8;
const MIN_DRAW_MS = 100;

/** The line of one bar at time `now` (ms), at most `width` characters. */
export function stageLine(s: StageState, now: number, width = 120): string {
  const complete = s.closed && s.total > 0 && s.done >= s.total;
  const fraction = s.total > 0 ? Math.min(1, s.done / s.total) : 0;
  // An open stage never claims 100 %: its last unit may be followed by work it does not count.
  const percent = complete ? 100 : Math.min(99, Math.floor(100 * fraction));
  const elapsed = ((s.end ?? now) - s.start) / 1000;
  const time = s.closed
    ? duration(elapsed)
    : s.done >= s.total && s.total > 0
      ? // Every unit counted, not closed: the time after the last unit is shown apart, as it may be
        // this stage's tail (model card, GGUF…) or the next stage before it first reports.
        `${duration((s.last - s.start) / 1000)} + ${duration((now - s.last) / 1000)} finishing`
      : `${duration(elapsed)}, ETA ${s.done > 0 ? duration((elapsed / s.done) * (s.total - s.done)) : '…'}`;
  const tail = [`${String(percent).padStart(3)} %`, `${s.done}/${s.total}`, ...(s.note && !s.closed ? [s.note] : []), time].join(' | ');
  // On a narrow terminal the bar gives way first (down to MIN_BAR_WIDTH cells), then the line is cut.
  const barWidth = Math.max(MIN_BAR_WIDTH, Math.min(BAR_WIDTH, width - s.label.length - tail.length - 4));
  const filled = complete ? barWidth : Math.min(barWidth - 1, Math.floor(barWidth * fraction));
  const line = `${s.label} [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}] ${tail}`;
  return line.slice(0, Math.max(0, width)); // cut plainly: an ellipsis would read as an unknown ETA
}

/** 7 s, 2m 05s, 1h 02m. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const SILENT: Progress = { update() {}, stop() {} };

/** cli-progress's bar, whose redraw timer does not keep the process alive (an error mid-stage must still exit). */
class Bar extends cliProgress.SingleBar {
  override render(): void {
    super.render();
    (this as unknown as { timer: NodeJS.Timeout | null }).timer?.unref();
  }
}

/** Open bars, closed where they stand by closeProgressBars(). */
const open = new Set<Progress>();

/** End every open bar's line (where it stopped): an error or interrupt message then starts on its own line. */
export function closeProgressBars(): void {
  for (const p of [...open]) p.stop();
}

/**
 * Bars labelled `label` (`label: stage` for named stages). A stage's clock starts at its first
 * update when that reports 0 units, else at the previous stage's last update (or at creation):
 * callers that report only finished units still get an ETA after the first one.
 */
export function progressBar(label: string, enabled: boolean, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  if (!enabled || !stream.isTTY) return SILENT;
  const now = options.now ?? (() => performance.now());
  let current: { state: StageState; bar: Bar } | null = null;
  let lastUpdate = now();
  let lastDraw = -Infinity;
  const close = (end?: number) => {
    if (!current) return;
    Object.assign(current.state, { closed: true, end });
    current.bar.stop(); // draws the final line, then a newline
    current = null;
    open.delete(progress);
  };

  const progress: Progress = {
    update(done, total, stage, note) {
      const t = now();
      const name = stage == null ? label : `${label}: ${stage}`;
      if (current && current.state.label !== name) close(lastUpdate);
      if (!current) {
        const state: StageState = { label: name, done, total, note, start: done === 0 ? t : lastUpdate, last: t, closed: false };
        const bar = new Bar({
          stream: stream as NodeJS.WriteStream,
          format: (_o, params) => stageLine(state, now(), params.maxWidth - 1),
          hideCursor: true,
          fps: options.live === false ? 1e-3 : 2, // live redraws twice a second (elapsed, ETA)
        });
        bar.start(total, done); // draws the first line
        current = { state, bar };
        open.add(progress);
        lastDraw = t;
      }
      Object.assign(current.state, { done, total, note, last: t });
      current.bar.setTotal(total);
      current.bar.update(done);
      // Some callers report thousands of times a second: draw at most every 100 ms.
      if (t - lastDraw >= MIN_DRAW_MS) {
        current.bar.render();
        lastDraw = t;
      }
      lastUpdate = t;
    },
    stop: () => close(),
  };
  return progress;
}

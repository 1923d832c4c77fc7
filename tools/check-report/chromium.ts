/**
 * Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
 * messages separated by NUL bytes, commands on fd 3, replies and events on fd 4), so no
 * browser-automation package is needed: only a Chromium binary (Debian's `chromium`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** $CHROMIUM, or the first of the usual names on PATH; undefined when there is none. */
export function findChromium(): string | undefined {
  const executable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const fromEnv = process.env.CHROMIUM;
  if (fromEnv) return executable(fromEnv) ? fromEnv : undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d.length > 0);
  return dirs.flatMap((dir) => CANDIDATES.map((name) => join(dir, name))).find(executable);
}

interface Message {
  id?: number;
  method?: string;
  sessionId?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

/** One page in a fresh headless Chromium. */
export class Page {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((m: Message) => void)[] = [];
  /** Uncaught exceptions and console errors of the page. */
  readonly errors: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
    private sessionId = '',
  ) {}

  static async open(binary: string, viewport: { width: number; height: number }): Promise<Page> {
    const profile = mkdtempSync(join(tmpdir(), 'compact-chromium-'));
    // The flags of a quiet headless run on a machine without network (no background requests).
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      '--hide-scrollbars',
      '--mute-audio',
      `--user-data-dir=${profile}`,
      '--remote-debugging-pipe',
      'about:blank',
    ];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const page = new Page(child, profile);
    page.listen(child.stdio[4] as Readable);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`chromium exited (${code}): ${stderr.trim().split('\n').slice(-3).join(' / ')}`))),
    );
    exited.catch(() => {}); // observed through the race below
    const { targetId } = (await Promise.race([page.send('Target.createTarget', { url: 'about:blank' }, false), exited])) as {
      targetId: string;
    };
    page.sessionId = ((await page.send('Target.attachToTarget', { targetId, flatten: true }, false)) as { sessionId: string }).sessionId;
    page.on((m) => {
      if (m.sessionId !== page.sessionId) return;
      if (m.method === 'Runtime.exceptionThrown')
        page.errors.push(JSON.stringify((m.params as { exceptionDetails: unknown }).exceptionDetails));
      if (m.method === 'Runtime.consoleAPICalled' && (m.params as { type: string }).type === 'error')
        page.errors.push(JSON.stringify(m.params));
    });
    await page.send('Runtime.enable');
    await page.send('Page.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { ...viewport, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  private listen(from: Readable): void {
    let buffer = '';
    from.setEncoding('utf8');
    from.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\0'); end >= 0; end = buffer.indexOf('\0')) {
        const message = JSON.parse(buffer.slice(0, end)) as Message;
        buffer = buffer.slice(end + 1);
        if (message.id != null && this.pending.has(message.id)) {
          const { resolve, reject } = this.pending.get(message.id)!;
          this.pending.delete(message.id);
          if (message.error) reject(new Error(message.error.message));
          else resolve(message.result ?? {});
        } else this.listeners.forEach((l) => l(message));
      }
    });
  }

  private on(listener: (m: Message) => void): void {
    this.listeners.push(listener);
  }

  /** A DevTools command, to this page's session (or to the browser). */
  send(method: string, params: Record<string, unknown> = {}, toPage = true): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const message = { id, method, params, ...(toPage ? { sessionId: this.sessionId } : {}) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify(message)}\0`);
    });
  }

  /** Navigate and wait for the load event (scripts have run). */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) =>
      this.on((m) => m.sessionId === this.sessionId && m.method === 'Page.loadEventFired' && resolve()),
    );
    await this.send('Page.navigate', { url });
    await loaded;
  }

  /** The value of a JavaScript expression in the page (JSON-serialisable results only). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result: { value: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** A PNG of the whole page at `scale` (the viewport is stretched to the page's height first). */
  async screenshot(width: number, scale: number): Promise<Buffer> {
    const height = await this.evaluate<number>('document.documentElement.scrollHeight');
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    const { data } = (await this.send('Page.captureScreenshot', { format: 'png', clip: { x: 0, y: 0, width, height, scale } })) as {
      data: string;
    };
    return Buffer.from(data, 'base64');
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.send('Browser.close', {}, false).catch(() => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/**
 * The live terminal view of `--watch` (stdout a TTY, no `--no-live`): one
 * table of the agents in flight, redrawn in place at every tick and every
 * event, below the plain lines, which still scroll by as they always did
 * (a plain line clears the table, prints, and the table is drawn again
 * under it). A redraw overwrites the table line by line, never blanking it
 * first, so it does not flicker. Every frame is cut to the terminal's current width, so a line
 * never wraps and a resize never leaves debris; the table is erased before
 * the run's summary, which stays on screen.
 *
 * {@linkcode renderFrame} is pure; {@linkcode createLiveView} owns the
 * cursor.
 *
 * @module
 */
import { exactDuration, roughDuration } from "../util/duration.ts";
import { cutTo } from "../util/text.ts";
import { columnWidths } from "../cli/table.ts";

/** One agent in flight, as the view shows it. */
export interface LiveRow {
  gapId: string;
  backend: string;
  /** `running`, `exited N`, `ending`. */
  state: string;
  elapsedMs: number;
  deadlineMs: number;
  /** Since its last output. */
  idleMs: number;
  /** `#12 open`, `merged`, or blank. */
  pr: string;
  /** What it has cost so far (`$0.42`), or blank without a structured session. */
  cost: string;
  /** The newest WARN/ERROR line of its stderr, or blank. */
  lastWarning: string;
}

/** The totals line. */
export interface LiveTotals {
  running: number;
  shipped: number;
  failed: number;
  /** Pickable gaps not dispatched yet. */
  queued: number;
  /** Until the next tick. */
  nextTickMs: number;
  /** What the run has spent so far (`$3.12`, with its budget when it has one), or blank. */
  spent?: string;
}

/** The frame's lines, each at most `width` characters. */
function renderFrame(rows: readonly LiveRow[], totals: LiveTotals, width: number): string[] {
  const cut = (line: string) => cutTo(line, width);
  const lines: string[] = [];
  if (rows.length > 0) {
    // The cost column only when some agent speaks a structured session.
    const costs = rows.some((r) => r.cost !== "");
    const cells = rows.map((r) => [
      r.gapId,
      r.backend,
      r.state,
      `${roughDuration(r.elapsedMs)}/${exactDuration(r.deadlineMs)} ${
        bar(r.elapsedMs / r.deadlineMs)
      }`,
      roughDuration(r.idleMs),
      r.pr,
      ...(costs ? [r.cost] : []),
      r.lastWarning,
    ]);
    const head = [
      "gap",
      "backend",
      "state",
      "elapsed/deadline",
      "idle",
      "pr",
      ...(costs ? ["cost"] : []),
      "last warning",
    ];
    const widths = columnWidths([head, ...cells]);
    const line = (c: string[]) =>
      c.map((x, i) => i === c.length - 1 ? x : x.padEnd(widths[i])).join("  ");
    lines.push(line(head), ...cells.map(line));
  }
  lines.push(
    `running ${totals.running}  shipped ${totals.shipped}  failed ${totals.failed}  ` +
      `queued ${totals.queued}  next tick in ${roughDuration(totals.nextTickMs)}` +
      (totals.spent ? `  spent ${totals.spent}` : ""),
  );
  return lines.map((l) => cut(l.trimEnd()));
}

/** `[#####-----] 50%` for a fraction (over 100% shows as full, with the real percentage). */
function bar(fraction: number): string {
  const f = Math.max(0, fraction);
  const filled = Math.min(10, Math.round(f * 10));
  return `[${"#".repeat(filled)}${"-".repeat(10 - filled)}] ${Math.round(f * 100)}%`;
}

/** A live view writing to a terminal. */
export interface LiveView {
  /**
   * A plain line (stdout, or `err`: stderr, the same terminal): printed
   * above the table, which is drawn again below it.
   */
  line(text: string, stream?: "out" | "err"): void;
  /** Redraw the table. */
  frame(rows: readonly LiveRow[], totals: LiveTotals): void;
  /** Erase the table for good (before the summary, which stays); later lines are plain. */
  close(): void;
}

/**
 * A live view on `write` (raw text to the terminal's stdout), `width()`
 * giving its current width; `writeErr` writes stderr's lines (to the same
 * terminal), between the table's erasure and its redraw, so none is
 * overwritten.
 *
 * @example
 * ```ts
 * let screen = "";
 * const view = createLiveView((t) => (screen += t), () => 80);
 * view.line("DISPATCHED: A-1");
 * view.close();
 * ```
 */
export function createLiveView(
  write: (text: string) => void,
  width: () => number,
  writeErr: (text: string) => void = write,
): LiveView {
  let last: string[] = []; // the table on screen (empty: none), above the cursor's line
  let drawnWidth = 0; // the terminal's width when it was drawn
  /**
   * Rows the table takes on screen now. A terminal that got narrower since
   * it was drawn reflows each line over more rows (as tmux, VTE, iTerm2 and
   * kitty do): moving up only its line count would leave its head behind.
   */
  const rowsOnScreen = () => {
    const w = width();
    if (w >= drawnWidth) return last.length;
    return last.reduce((n, l) => n + Math.max(1, Math.ceil([...l].length / w)), 0);
  };
  const erase = () => {
    // To the table's first row, then clear to the end of the screen.
    const rows = rowsOnScreen();
    if (rows > 0) write(`\x1b[${rows}F\x1b[J`);
    last = [];
  };
  const draw = (lines: string[]) => {
    if (lines.length > 0) write(lines.join("\n") + "\n");
    last = lines;
    drawnWidth = width();
  };
  let closed = false;
  let rowsNow: readonly LiveRow[] = [];
  let totalsNow: LiveTotals | undefined;
  return {
    line(text, stream = "out") {
      erase();
      (stream === "err" ? writeErr : write)(text + "\n");
      if (closed) return;
      // Drawn again at today's width: the terminal may have been resized since.
      draw(totalsNow === undefined ? [] : renderFrame(rowsNow, totalsNow, width()));
    },
    frame(rows, totals) {
      if (closed) return;
      rowsNow = rows;
      totalsNow = totals;
      const next = renderFrame(rowsNow, totalsNow, width());
      const same = next.length === last.length && next.every((l, i) => l === last[i]);
      if (same && last.length > 0 && width() === drawnWidth) return;
      // No flicker: overwrite the table line by line (each cleared just before it is
      // written, never the whole table at once), then clear what a shorter one left.
      const onScreen = rowsOnScreen();
      const up = onScreen > 0 ? `\x1b[${onScreen}F` : "";
      const tail = next.length < onScreen ? "\x1b[J" : "";
      write(up + next.map((l) => `\x1b[2K${l}\n`).join("") + tail);
      last = next;
      drawnWidth = width();
    },
    close() {
      erase();
      closed = true;
    },
  };
}

/**
 * A program on a real terminal: a tmux session of its own (its own server
 * socket, a fixed size), its screen and scrollback read back as text, the
 * way an operator sees it. Shared by tests only.
 *
 * @module
 */
import { runProcess } from "./process.ts";
import { waitFor } from "./process.ts";

/** A program running in a terminal. */
export interface OnTerminal extends AsyncDisposable {
  /** Everything on the terminal now, scrollback included (trailing blank lines dropped). */
  screen(): Promise<string>;
  /** Resize the terminal. */
  resize(columns: number, rows: number): Promise<void>;
  /** Waits until the program has exited; its exit code. */
  finished(): Promise<number>;
}

/**
 * Start `argv` (cwd `cwd`, environment `env`) on a tmux terminal of
 * `columns` x `rows`.
 *
 * @example
 * ```ts ignore
 * await using term = await onTerminal(["ls"], { cwd: "/", env: {}, columns: 80, rows: 24 });
 * console.log(await term.screen());
 * ```
 */
export async function onTerminal(
  argv: readonly string[],
  options: {
    cwd: string;
    env: Record<string, string>;
    columns: number;
    rows: number;
    /** Lines printed first, as a terminal in use has them above the program's. */
    before?: number;
  },
): Promise<OnTerminal> {
  const socket = `chump-${crypto.randomUUID().slice(0, 8)}`;
  const tmux = (args: string[]) => runProcess("tmux", ["-L", socket, ...args]);
  const quote = (w: string) => `'${w.replaceAll("'", `'"'"'`)}'`;
  const exports = Object.entries(options.env).map(([k, v]) => `${k}=${quote(v)}`).join(" ");
  // The exit code is printed where it can be found, then the pane stays for reading.
  const before = options.before ? `seq 1 ${options.before}; ` : "";
  const line =
    `${before}cd ${quote(options.cwd)} && env ${exports} ${argv.map(quote).join(" ")}; ` +
    `echo "__EXIT__=$?"; sleep 600`;
  const started = await tmux([
    "new-session",
    "-d",
    "-x",
    String(options.columns),
    "-y",
    String(options.rows),
    "sh",
    "-c",
    line,
  ]);
  if (started.code !== 0) throw new Error(`tmux new-session: ${started.stderr}`);
  await tmux(["set-option", "-g", "history-limit", "5000"]);
  const screen = async () => {
    const r = await tmux(["capture-pane", "-p", "-J", "-S", "-5000"]);
    return r.stdout.replace(/\s+$/, "");
  };
  return {
    screen,
    async resize(columns, rows) {
      await tmux(["resize-window", "-x", String(columns), "-y", String(rows)]);
    },
    async finished() {
      const text = await waitFor(async () => /__EXIT__=\d+/.exec(await screen())?.[0], {
        timeoutMs: 120_000,
        everyMs: 100,
        what: "the program on the terminal to exit",
      });
      return Number(text.split("=")[1]);
    },
    async [Symbol.asyncDispose]() {
      await tmux(["kill-server"]);
    },
  };
}

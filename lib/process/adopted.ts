/**
 * An agent this process did not start: the agent of an adopted lease
 * (watch/adopt.ts), seen as an {@linkcode AgentProcess} so the watch loop
 * treats it like its own. It is not our child, so its end is learned from
 * outside: the exit status its waiter wrote (process/waiter.ts), or, when
 * the waiter is gone without writing one, "not recorded". One poller per run
 * serves every adopted agent of the run: status files are cheap to look at, and the
 * process table is listed once per round, only while some status is missing.
 *
 * @module
 */
import { type AgentProcess, EXIT_UNRECORDED } from "./spawn.ts";
import { createStderrTail } from "./stderr_tail.ts";
import { FOLLOW_MS, followLogs } from "./follow.ts";
import type { SessionMeter } from "../cost/session.ts";
import type { Processes } from "./table.ts";
import { type AgentFiles, readStatus } from "./waiter.ts";

/** What is known of the agent to adopt. */
export interface AdoptedAgent {
  /** Its waiter's pid (= its process group). */
  pid: number;
  /** The identity recorded with the pid (see process/table.ts). */
  identity: string | null;
  /** When it was dispatched, ms since the epoch. */
  startedMs: number;
  /** Its files, when its dispatch kept them. */
  files?: AgentFiles;
  /** Where its stdout goes when it speaks a structured session (read from the file's start). */
  session?: SessionMeter;
}

interface Watched {
  agent: AdoptedAgent;
  /**
   * Record its end (`at`: when, ms since the epoch, if known); resolves once
   * its tail is complete and its exit code set.
   */
  settle(code: number, at?: number): Promise<void>;
}

/**
 * The adopted agents of one run, and the one poller that serves them all
 * (created by the run's adoption, watch/adopt.ts): it runs every
 * {@linkcode FOLLOW_MS} while some agent is watched, and stops with the last.
 */
export class AdoptedAgents {
  readonly #processes: Processes;
  readonly #watched = new Set<Watched>();
  #timer?: ReturnType<typeof setInterval>;
  /** The round in progress, shared by whoever asks meanwhile. */
  #round?: Promise<void>;

  /** @param processes the process table to look at (for agents whose status is missing) */
  constructor(processes: Processes) {
    this.#processes = processes;
  }

  /**
   * Watch an agent started by another orchestrator.
   *
   * @example
   * ```ts ignore
   * const proc = agents.adopt({ pid: 4242, identity: "proc:...:123", startedMs: Date.now() });
   * console.log(await proc.exited); // e.g. 1, or EXIT_UNRECORDED
   * ```
   */
  adopt(agent: AdoptedAgent): AgentProcess {
    const tail = createStderrTail();
    const session = agent.session;
    const follower = agent.files
      ? followLogs(agent.files, tail, agent.startedMs, session)
      : undefined;
    let exitCode: number | null = null;
    let endedAt: number | null = null;
    const exited = new Promise<number>((resolve) => {
      const w: Watched = {
        agent,
        settle: async (code, at) => {
          this.#watched.delete(w);
          if (this.#watched.size === 0 && this.#timer !== undefined) {
            clearInterval(this.#timer);
            this.#timer = undefined;
          }
          await follower?.stop();
          tail.end();
          session?.end();
          endedAt = at ?? null;
          exitCode = code;
          resolve(code);
        },
      };
      this.#watched.add(w);
      this.#timer ??= setInterval(() => this.poll(), FOLLOW_MS);
    });
    return {
      pid: agent.pid,
      pgid: agent.pid,
      startTime: agent.identity ?? "",
      spawnedAt: agent.startedMs,
      tail,
      session,
      exited,
      get exitCode() {
        return exitCode;
      },
      get endedAt() {
        return endedAt;
      },
      get lastOutputAt() {
        return follower?.lastOutputAt ?? agent.startedMs;
      },
    };
  }

  /**
   * Look at every adopted agent once now (as the poller does every
   * {@linkcode FOLLOW_MS}); resolves when the agents found ended have their
   * exit code set. An adopting run calls it before its first tick, so what
   * ended while nobody watched is decided at that tick.
   */
  poll(): Promise<void> {
    this.#round ??= this.#pollRound().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  /** One round: every status file, then (only if needed) one process listing. */
  async #pollRound(): Promise<void> {
    const agents = [...this.#watched];
    if (agents.length === 0) return;
    const codes = await Promise.all(
      agents.map((w) => w.agent.files ? readStatus(w.agent.files) : undefined),
    );
    // When each status was written: when that agent ended.
    const times = await Promise.all(
      agents.map((w, i) =>
        codes[i] !== undefined && w.agent.files ? writtenAt(w.agent.files.status) : undefined
      ),
    );
    const missing = agents.filter((_, i) => codes[i] === undefined);
    const table = missing.length > 0 ? await this.#processes.table({ fresh: true }) : undefined;
    const settled: Promise<void>[] = [];
    for (const [i, w] of agents.entries()) {
      const code = codes[i];
      if (code !== undefined) {
        settled.push(w.settle(code, times[i]));
        continue;
      }
      if (!table || table.unknown || table.alive(w.agent.pid, w.agent.identity)) continue;
      // Gone: its waiter may have written the status just before it exited.
      const late = w.agent.files ? await readStatus(w.agent.files) : undefined;
      const at = late !== undefined && w.agent.files
        ? await writtenAt(w.agent.files.status)
        : undefined;
      settled.push(w.settle(late ?? EXIT_UNRECORDED, at));
    }
    await Promise.all(settled);
  }
}

/** When `path` was last written (ms since the epoch), if it can be told. */
async function writtenAt(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime();
  } catch {
    return undefined;
  }
}

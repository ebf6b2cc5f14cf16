/**
 * The lease ledger's statements (store/ledger.ts): selecting leases,
 * recording each step of a dispatch, taking a lease over, a run's
 * heartbeat, what dispatches cost. SQL text only.
 *
 * @module
 */

export const SELECT = "SELECT * FROM chump_dispatch_leases";
export const ACTIVE = `${SELECT} WHERE state IN ('starting', 'running', 'detached')`;

export const INSERT_LEASE = `INSERT INTO chump_dispatch_leases (gap_id, repo_root, branch, worktree,
    base_commit, effort, backend, orchestrator_pid, orchestrator_start, host, state, started_ms,
    updated_ms, deadline_ms, max_watch_ms, shared_id, agent_format, model)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'starting', ?, ?, ?, ?, ?, ?, ?)`;

export const RECORD_PID = `UPDATE chump_dispatch_leases
    SET pid = ?, pid_start = ?, state = ?, log_base = ?, updated_ms = ?
  WHERE id = ? AND state = 'starting'`;

export const NOTE_COST = `UPDATE chump_dispatch_leases
    SET cost_usd = ?, tokens_in = ?, tokens_out = ?, tokens_cache_read = ?,
        tokens_cache_write = ?, turns = ?, session_id = ?
  WHERE id = ? AND state != 'ended'`;

export const SPENT_BY_OTHERS = `SELECT coalesce(sum(cost_usd), 0) AS usd FROM chump_dispatch_leases
  WHERE cost_usd IS NOT NULL AND (state != 'ended' OR updated_ms > ?)
    AND NOT (orchestrator_pid = ? AND coalesce(orchestrator_start, '') = ? AND host = ?)`;

export const RECORD_IDENTITY = `UPDATE chump_dispatch_leases SET pid_start = ?, updated_ms = ?
  WHERE id = ? AND pid = ? AND state IN ('running', 'detached')`;

export const TAKE_OVER = `UPDATE chump_dispatch_leases
    SET orchestrator_pid = ?, orchestrator_start = ?, host = ?, updated_ms = ?,
        generation = generation + 1,
        state = CASE state WHEN 'detached' THEN 'running' ELSE state END
  WHERE id = ? AND generation = ? AND state IN ('starting', 'running', 'detached')`;

export const RUN_BEAT =
  `INSERT INTO chump_runs (run_id, host, pid, started_ms, heartbeat_ms, ended_ms,
    ticks, provider_errors, write_failures, live_agents, spent_usd, budget_run_usd,
    budget_day_usd, budget_gap_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT(run_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms,
    ended_ms = excluded.ended_ms, ticks = excluded.ticks,
    provider_errors = excluded.provider_errors,
    write_failures = excluded.write_failures, live_agents = excluded.live_agents,
    spent_usd = excluded.spent_usd, budget_run_usd = excluded.budget_run_usd,
    budget_day_usd = excluded.budget_day_usd, budget_gap_usd = excluded.budget_gap_usd`;

export const RESPAWNED = `UPDATE chump_dispatch_leases
    SET pid = ?, pid_start = ?, log_base = coalesce(?, log_base), fix_round = ?, updated_ms = ?
  WHERE id = ? AND state IN ('running', 'detached')`;

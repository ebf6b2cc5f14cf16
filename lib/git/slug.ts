/**
 * Gap id -> slug, branch and worktree path (CONTRACT §3.1).
 *
 * The slug is the id lowercased with `_` -> `-` (as the seed: `AUTO_013` ->
 * `auto-013`), every run of other characters outside `[a-z0-9.-]` -> one
 * `-`, then made a valid git branch component and a single path component:
 * no `..`, no leading `.` or `-`, no trailing `.` or `.lock`, at most
 * {@linkcode MAX_SLUG_LENGTH} characters. Hostile ids (`../../x`, `$(id)`,
 * unicode, 300 characters) therefore always land inside `.claude/worktrees/`.
 * An empty slug, an over-long one, one that dropped characters of the id
 * (anything but the plain lowercase form: `ÜNI-中文-🚀` would otherwise be
 * `ni`, the same as `NI`), or one another id already took, gets a short
 * hash of the id as a suffix.
 *
 * @module
 */
import { join } from "../util/path.ts";

/** Long ids are cut to this, hash suffix included; well under any file name limit. */
export const MAX_SLUG_LENGTH = 80;

/** Where worktrees live, relative to the repo root. */
export const WORKTREES_DIR = join(".claude", "worktrees");

/** Branch namespace of dispatched work. */
const BRANCH_PREFIX = "claude/";

/**
 * The plain slug of an id, before collisions are considered ("" if nothing is left).
 *
 * @example
 * ```ts
 * baseSlug("AUTO_013"); // "auto-013"
 * ```
 */
export function baseSlug(id: string): string {
  // The common id (`COG-035`): letters, digits and dashes, starting with one of the first two.
  if (SIMPLE_ID.test(id)) return id.toLowerCase();
  let s = plainLower(id);
  s = s.replace(/[^a-z0-9.-]+/g, "-");
  s = s.replace(/\.{2,}/g, ".");
  s = s.replace(/^[.-]+/, "");
  s = s.replace(/\.+$/, "");
  if (s.endsWith(".lock")) s = s.slice(0, -".lock".length) + "-lock";
  return s;
}

/** An id whose slug is itself lowercased: nothing to replace, strip or shorten. */
const SIMPLE_ID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/** The id lowercased (ASCII) with `_` -> `-`: a slug equal to it dropped nothing. */
function plainLower(id: string): string {
  return id.replace(/[A-Z]/g, (c) => c.toLowerCase()).replaceAll("_", "-");
}

/** 8 hex digits of FNV-1a over the id's UTF-8 bytes: short, stable, no I/O. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

function withSuffix(base: string, id: string, salt: number): string {
  const suffix = shortHash(salt === 0 ? id : `${id}#${salt}`);
  const room = MAX_SLUG_LENGTH - suffix.length - 1;
  const head = base.slice(0, room).replace(/[.-]+$/, "");
  return head === "" ? `gap-${suffix}` : `${head}-${suffix}`;
}

/**
 * Slugs for a list of ids, unique among them: the first id (in the given
 * order) to claim a slug keeps it, later ones that slug alike get a hash suffix.
 *
 * @param ids gap ids in file order (repeats map to the same slug)
 * @returns id -> slug
 * @example
 * ```ts
 * assignSlugs(["AUTO_013", "auto-013"]); // auto-013, auto-013-<hash>
 * ```
 */
export function assignSlugs(ids: readonly string[]): Map<string, string> {
  const byId = new Map<string, string>();
  const taken = new Set<string>();
  // Indexed, not for-of: a dry run slugs 100,000 ids once, mostly before the JIT compiles this.
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (byId.has(id)) continue;
    // The common id is its own slug lowercased: one test, not the two of baseSlug and plainLower.
    const simple = SIMPLE_ID.test(id);
    const base = simple ? id.toLowerCase() : baseSlug(id);
    const kept = simple || base === plainLower(id);
    let slug = base !== "" && kept && base.length <= MAX_SLUG_LENGTH && !taken.has(base)
      ? base
      : withSuffix(base, id, 0);
    for (let salt = 1; taken.has(slug); salt++) slug = withSuffix(base, id, salt);
    taken.add(slug);
    byId.set(id, slug);
  }
  return byId;
}

/**
 * Branch name for a slug.
 *
 * @example
 * ```ts
 * branchFor("auto-013"); // "claude/auto-013"
 * ```
 */
export function branchFor(slug: string): string {
  return BRANCH_PREFIX + slug;
}

/**
 * Worktree path for a slug under a repo root.
 *
 * @example
 * ```ts
 * worktreeFor("/repo", "auto-013"); // "/repo/.claude/worktrees/auto-013"
 * ```
 */
export function worktreeFor(repoRoot: string, slug: string): string {
  return worktreesUnder(repoRoot)(slug);
}

/**
 * The worktree path of each slug under one repo root, the root's part made
 * once (a dry run of 100,000 picks). A slug is one path component, so it is
 * appended as it is.
 *
 * @example
 * ```ts
 * worktreesUnder("/repo/")("auto-013"); // "/repo/.claude/worktrees/auto-013"
 * ```
 */
export function worktreesUnder(repoRoot: string): (slug: string) => string {
  const dir = join(repoRoot, WORKTREES_DIR);
  return (slug) => `${dir}/${slug}`;
}

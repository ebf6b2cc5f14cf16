/**
 * lib/util/path.ts gives node:path's answers (POSIX) on every shape of
 * path this program meets and the odd ones: relative and absolute, `.` and
 * `..` above the start, repeated and trailing slashes, the root, nothing.
 */
import { equal } from "node:assert/strict";
import * as node from "node:path";
import { fileURLToPath } from "node:url";
import * as ours from "../lib/util/path.ts";

const PATHS = [
  "",
  ".",
  "..",
  "/",
  "//",
  "///",
  "a",
  "a/",
  "a//",
  "/a",
  "/a/",
  "//a",
  "a/b",
  "a/b/",
  "/a/b",
  "a/./b",
  "a/../b",
  "../a",
  "../../a/b",
  "/../a",
  "/a/../..",
  "a/b/../../..",
  "./a/./b/.",
  "/repo/docs/gaps.yaml",
  "docs/../gaps.yaml",
  "/tmp/x y/z",
  "a\\b",
  "/a/b/c/../../d/",
  ".git",
  "/repo/.claude/worktrees/g-1",
  "..a/b..",
  "/a/.../b",
];

Deno.test("join, resolve, normalize, dirname, basename and relative agree with node:path", () => {
  for (const p of PATHS) {
    equal(ours.normalize(p), node.normalize(p), `normalize(${JSON.stringify(p)})`);
    equal(ours.dirname(p), node.dirname(p), `dirname(${JSON.stringify(p)})`);
    equal(ours.basename(p), node.basename(p), `basename(${JSON.stringify(p)})`);
    equal(ours.resolve(p), node.resolve(p), `resolve(${JSON.stringify(p)})`);
    for (const q of PATHS) {
      equal(ours.join(p, q), node.join(p, q), `join(${JSON.stringify(p)}, ${JSON.stringify(q)})`);
      equal(ours.resolve(p, q), node.resolve(p, q), `resolve(${p}, ${q})`);
      equal(ours.relative(p, q), node.relative(p, q), `relative(${p}, ${q})`);
    }
  }
  equal(ours.join(), node.join());
  equal(ours.resolve(), node.resolve());
  equal(ours.join("/repo", "docs", "", "gaps.yaml"), node.join("/repo", "docs", "", "gaps.yaml"));
  equal(ours.delimiter, node.delimiter);
  for (const u of ["file:///repo/main.ts", "file:///a%20b/c%25d.ts", "file:///x/%E2%80%94.ts"]) {
    equal(ours.fileUrlPath(new URL(u)), fileURLToPath(new URL(u)));
  }
});

import { equal, ok as assert } from "node:assert/strict";
import { basename, dirname } from "node:path";
import { assignSlugs, baseSlug, branchFor, MAX_SLUG_LENGTH, worktreeFor } from "../lib/git/slug.ts";

Deno.test("ids are lowercased and '_' becomes '-', as the seed", () => {
  equal(baseSlug("AUTO_013"), "auto-013");
  equal(baseSlug("COMP-011a"), "comp-011a");
  equal(baseSlug("MEM-006-VALIDATE"), "mem-006-validate");
});

Deno.test("each run of other characters becomes one '-'", () => {
  equal(baseSlug("a b"), "a-b");
  equal(baseSlug("x;touch /tmp/pwned"), "x-touch-tmp-pwned");
  equal(baseSlug("$(id)"), "id-");
  equal(baseSlug("ÜBER→gap"), "ber-gap");
});

Deno.test("slugs are valid branch names and single path components", () => {
  equal(baseSlug("../../x"), "x");
  equal(baseSlug("/abs"), "abs");
  equal(baseSlug("a..b"), "a.b");
  equal(baseSlug(".hidden"), "hidden");
  equal(baseSlug("-flag"), "flag");
  equal(baseSlug("x.lock"), "x-lock");
  equal(baseSlug("ends."), "ends");
});

Deno.test("empty slugs and colliding slugs get a hash suffix; the first keeps the plain slug", () => {
  const slugs = assignSlugs(["AUTO_013", "auto-013", "🙂", "...", "AUTO_013"]);
  equal(slugs.get("AUTO_013"), "auto-013");
  assert(/^auto-013-[0-9a-f]{8}$/.test(slugs.get("auto-013")!));
  assert(/^gap-[0-9a-f]{8}$/.test(slugs.get("🙂")!));
  assert(/^gap-[0-9a-f]{8}$/.test(slugs.get("...")!));
  equal(new Set(slugs.values()).size, 4);
});

Deno.test("a 300-character id is cut to a bounded, unique slug", () => {
  const long = "A".repeat(300);
  const slugs = assignSlugs([long, long + "B"]);
  for (const s of slugs.values()) assert(s.length <= MAX_SLUG_LENGTH, s);
  equal(new Set(slugs.values()).size, 2);
});

Deno.test("every hostile id stays one component under .claude/worktrees", () => {
  const hostile = [
    "../../x",
    "/abs",
    "a b",
    "x;touch /tmp/pwned",
    "$(id)",
    "`id`",
    "..",
    ".",
    "-",
    "a/../../b",
    "\n",
    "x".repeat(300),
  ];
  const slugs = assignSlugs(hostile);
  for (const id of hostile) {
    const slug = slugs.get(id)!;
    assert(/^[a-z0-9][a-z0-9.-]*$/.test(slug), `${JSON.stringify(id)} -> ${slug}`);
    assert(!slug.includes(".."));
    assert(!slug.endsWith(".lock") && !slug.endsWith("."));
    const wt = worktreeFor("/repo", slug);
    equal(dirname(wt), "/repo/.claude/worktrees");
    equal(basename(wt), slug);
    equal(branchFor(slug), `claude/${slug}`);
  }
});

Deno.test("a slug that dropped characters of its id keeps a short hash of the id: unicode ids stay told apart", () => {
  const slugs = assignSlugs(["ÜNI-中文-🚀", "ÜNI-日本-🚀", "NI", "a b", "a-b", "AUTO_013"]);
  assert(/^ni-[0-9a-f]{8}$/.test(slugs.get("ÜNI-中文-🚀")!), slugs.get("ÜNI-中文-🚀"));
  assert(/^ni-[0-9a-f]{8}$/.test(slugs.get("ÜNI-日本-🚀")!));
  equal(slugs.get("NI"), "ni", "a plain id keeps its plain slug");
  assert(/^a-b-[0-9a-f]{8}$/.test(slugs.get("a b")!), "a space is dropped too");
  equal(slugs.get("a-b"), "a-b");
  equal(slugs.get("AUTO_013"), "auto-013", "lowercasing and '_' -> '-' drop nothing");
  equal(new Set(slugs.values()).size, 6);
  // The same id gets the same slug in any backlog (the hash is of the id, not of its order).
  equal(assignSlugs(["ÜNI-中文-🚀"]).get("ÜNI-中文-🚀"), slugs.get("ÜNI-中文-🚀"));
});

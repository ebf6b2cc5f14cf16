/**
 * The malformed-backlog corpus: every file under tests/fixtures/malformed
 * must make the real CLI exit 2 with exactly one line naming the file and,
 * where known, line and column; never a stack trace.
 */
import { equal } from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runMain, scratch } from "./_helpers.ts";

const DIR = "tests/fixtures/malformed";

/** File -> the message after `chump-orchestrator: error: <path>`. */
const CORPUS: Record<string, string> = {
  "bad-indent.yaml": ":4:4: invalid YAML: bad indentation of a sequence entry",
  "bad-key-value.yaml": ":1:8: invalid YAML: bad indentation of a mapping entry",
  "binary.yaml": ": not UTF-8 text",
  "blank-id.yaml": ":2: gap id is empty",
  "comments-only.yaml": ": expected a top-level 'gaps:' list, found nothing",
  "depends-mapping.yaml": ":2: gap A-1: 'depends_on' must be a list of gap ids, found a mapping",
  "depends-nested-list.yaml": ":2: gap A-1: 'depends_on' entries must be gap ids, found a list",
  "empty-id.yaml": ":2: gap id is empty",
  "empty.yaml": ": empty backlog (expected a top-level 'gaps:' list)",
  "gap-list.yaml": ":1: gap #1 of the list is not a mapping (found a list)",
  "gap-null.yaml": ":1: gap #1 of the list is not a mapping (found nothing)",
  "gap-number.yaml": ":1: gap #2 of the list is not a mapping (found a number (42))",
  "gap-string.yaml": ':1: gap #1 of the list is not a mapping (found a string ("AUTO-1"))',
  "gaps-mapping.yaml": ":1: 'gaps' must be a list of gaps, found a mapping",
  "gaps-null.yaml":
    ":1: 'gaps' must be a list of gaps, found nothing (write 'gaps: []' for an empty backlog)",
  "gaps-string.yaml": `:1: 'gaps' must be a list of gaps, found a string ("hello")`,
  "id-bool.yaml": ":3: gap id must be a string, found a boolean (true)",
  "id-list.yaml": ":2: gap id must be a string, found a list",
  "id-number.yaml": ":2: gap id must be a string, found a number (42)",
  "list-without-ids.yaml": ":1: gap has no 'id'",
  "mapping-colon-missing.yaml":
    ":4:11: invalid YAML: can not read a block mapping entry; a multiline key may not be an implicit key",
  "missing-id.yaml": ":4: gap has no 'id'",
  "no-gaps-key.yaml": ": no top-level 'gaps:' list",
  "nul-byte.yaml": ":1:18: invalid YAML: null byte is not allowed in input",
  "null-id.yaml": ":2: gap has no 'id'",
  "priority-mapping.yaml": ":2: gap A-1: 'priority' must be a single value, found a mapping",
  "root-number.yaml": ": expected a top-level 'gaps:' list, found a number (42)",
  "root-scalar.yaml": `: expected a top-level 'gaps:' list, found a string ("just some text")`,
  "status-list.yaml": ":2: gap A-1: 'status' must be a single value, found a list",
  "tab-indent.yaml": ":2:1: invalid YAML: tab characters must not be used in indentation",
  "title-list.yaml": ":2: gap A-1: 'title' must be a single value, found a list",
  "two-documents.yaml": ": invalid YAML: expected a single document in the stream, but found more",
  "unclosed-flow.yaml": ":3:1: invalid YAML: unexpected end of the stream within a flow collection",
  "unknown-alias.yaml": ':1:15: invalid YAML: unidentified alias "nowhere"',
  "unterminated-quote.yaml":
    ":4:1: invalid YAML: unexpected end of the stream within a double quoted scalar",
  "whitespace-only.yaml": ": empty backlog (expected a top-level 'gaps:' list)",
};

/** Assert: exit 2, stdout empty, stderr exactly one line, equal to `expected`. */
function assertOneLineError(
  ran: { code: number; stdout: string; stderr: string },
  expected: string,
) {
  equal(ran.code, 2, `exit code; stderr was: ${ran.stderr}`);
  equal(ran.stdout, "");
  equal(ran.stderr, `chump-orchestrator: error: ${expected}\n`);
}

Deno.test("the corpus lists every malformed file and has at least 30", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, DIR))) files.push(e.name);
  equal(files.sort().join("\n"), Object.keys(CORPUS).sort().join("\n"));
  equal(files.length >= 30, true);
});

for (const [file, message] of Object.entries(CORPUS)) {
  Deno.test(`malformed backlog ${file}: exit 2 and one line`, async () => {
    const path = `${DIR}/${file}`;
    assertOneLineError(await runMain(["--backlog", path]), `${path}${message}`);
  });
}

Deno.test("a path that does not exist", async () => {
  assertOneLineError(
    await runMain(["--backlog", "no/such/backlog.yaml"]),
    "backlog not found: no/such/backlog.yaml",
  );
});

Deno.test("the default backlog missing says what the default is", async () => {
  await using dir = await scratch();
  assertOneLineError(
    await runMain(["--repo-root", dir.path]),
    `backlog not found: ${dir.path}/docs/gaps.yaml ` +
      "(the default is docs/gaps.yaml under the repo root; pass --backlog PATH)",
  );
});

Deno.test("a directory with one bad file names that file", async () => {
  await using dir = await scratch();
  await Deno.writeTextFile(join(dir.path, "A-1.yaml"), "- id: A-1\n  status: open\n");
  await Deno.writeTextFile(join(dir.path, "B-2.yaml"), "- id: B-2\n  title: [oops]\n");
  assertOneLineError(
    await runMain(["--backlog", dir.path]),
    `${dir.path}/B-2.yaml:1: gap B-2: 'title' must be a single value, found a list`,
  );
});

Deno.test("a directory without *.yaml files", async () => {
  await using dir = await scratch();
  await Deno.writeTextFile(join(dir.path, "notes.txt"), "gaps: []\n");
  assertOneLineError(
    await runMain(["--backlog", dir.path]),
    `backlog directory ${dir.path} has no *.yaml files`,
  );
});

Deno.test("a file without read permission", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "secret.yaml");
  await Deno.writeTextFile(file, "gaps: []\n");
  await Deno.chmod(file, 0o000);
  let ran;
  if (Deno.uid() === 0) {
    // root reads anything; deny the read through Deno's permissions instead.
    const args = ["run", "--quiet", "--no-prompt", `--allow-read=${ROOT}`, "--allow-run=git"];
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...args, join(ROOT, "main.ts"), "--backlog", file, "--repo-root", ROOT],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    ran = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } else {
    ran = await runMain(["--backlog", file]);
  }
  assertOneLineError(ran, `cannot read backlog ${file}: permission denied`);
});

Deno.test("a file over what one string holds is refused before it is read; one over 64 MiB loads", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "huge.yaml");
  {
    using f = await Deno.open(file, { write: true, create: true });
    await f.truncate(513 * 1024 * 1024);
  }
  assertOneLineError(
    await runMain(["--backlog", file]),
    `${file}: larger than 512 MiB, more than one file can hold here; split it into a directory of *.yaml files`,
  );
  // 66 MB of backlog (the old limit was 64 MiB): it loads and picks.
  const big = join(dir.path, "big.yaml");
  const text = "x".repeat(70) + "\n";
  const gap = (i: number) =>
    `  - id: BIG-${i}\n    priority: P1\n    status: open\n    description: |\n` +
    `      ${text}`.repeat(450);
  await Deno.writeTextFile(
    big,
    "gaps:\n" + Array.from({ length: 2000 }, (_, i) => gap(i)).join(""),
  );
  equal((await Deno.stat(big)).size > 64 * 1024 * 1024, true);
  const ran = await runMain(["--backlog", big, "--max-parallel", "3"]);
  equal(ran.code, 0, ran.stderr);
  equal(ran.stdout.split("\n").filter((l) => l.startsWith("WOULD DISPATCH: ")).length, 3);
});

Deno.test("nesting too deep to parse is an error, not a crash", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "deep.yaml");
  await Deno.writeTextFile(file, "gaps: " + "[".repeat(200_000));
  assertOneLineError(
    await runMain(["--backlog", file]),
    `${file}: invalid YAML: document nests too deeply to parse`,
  );
});

import { deepEqual, equal } from "node:assert/strict";
import { join } from "node:path";
import { pathState, pathStateSync, readText, readWholeFile, statable } from "../lib/util/fs.ts";
import { scratch } from "./_helpers.ts";

/** `n` bytes that differ from one offset to the next. */
function bytesOf(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

Deno.test("a whole file is read whatever the size its stat gave: exact, grown since, shrunk since, small", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "big.bin");
  const bytes = bytesOf(1_500_000);
  await Deno.writeFile(file, bytes);
  // The size the stat gave (one buffer of it), then as if the file had grown or shrunk since.
  for (const size of [bytes.length, bytes.length - 1, 1 << 20, bytes.length + 1, 3_000_000]) {
    deepEqual(readWholeFile(file, size), bytes, `stat said ${size}`);
  }
  const small = join(dir.path, "small.bin");
  await Deno.writeFile(small, bytes.subarray(0, 1000));
  deepEqual(readWholeFile(small, 1000), bytes.subarray(0, 1000));
  equal(readWholeFile(join(dir.path, "big.bin"), 0).length, bytes.length);
});

Deno.test("statable: an existing path yes, a missing one no", async () => {
  await using dir = await scratch();
  equal(statable(dir.path), true);
  equal(statable(join(dir.path, "missing")), false);
});

Deno.test("pathState: there, surely not there (missing, or under a file), or not known (a symlink loop)", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "file");
  await Deno.writeTextFile(file, "x");
  const dangling = join(dir.path, "dangling");
  await Deno.symlink(join(dir.path, "nowhere"), dangling);
  const loop = join(dir.path, "loop");
  await Deno.symlink(loop, loop);
  const cases: [string, string][] = [
    [file, "present"],
    [dangling, "present"], // the link itself is there: nothing under it is claimed gone
    [join(dir.path, "missing"), "absent"],
    [join(file, "under"), "absent"], // a path under a file cannot exist
    [join(loop, "under"), "unknown"], // too many symlinks: the disk cannot tell
  ];
  for (const [path, state] of cases) {
    equal(await pathState(path), state, path);
    equal(pathStateSync(path), state, path);
  }
});

Deno.test("readText: a file's text, the default when it is missing, undefined when it cannot be read", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "f");
  await Deno.writeTextFile(file, "x\n");
  equal(await readText(file), "x\n");
  equal(await readText(join(dir.path, "missing"), ""), "");
  equal(await readText(join(dir.path, "missing")), undefined);
  equal(await readText(dir.path, ""), undefined); // a directory: not missing, cannot be read
});

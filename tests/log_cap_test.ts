/** The log cap (lib/process/log_cap.ts) on real files, with a writer appending meanwhile. */
import { equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { capLog } from "../lib/process/log_cap.ts";
import { scratch } from "./_helpers.ts";

Deno.test("a log under its cap is left alone; one over it keeps its newest half-cap", async () => {
  await using dir = await scratch("chump-cap-");
  const path = join(dir.path, "a.err.log");
  const lines = Array.from({ length: 1000 }, (_, i) => `line ${String(i).padStart(4, "0")}\n`);
  await Deno.writeTextFile(path, lines.join(""));
  equal(await capLog(path, 20_000), 0);
  equal((await Deno.stat(path)).size, 10_000);
  equal(await capLog(path, 4_000), 8_000);
  equal(await Deno.readTextFile(path), lines.slice(800).join(""));
  equal(await capLog(join(dir.path, "missing"), 10), 0, "a missing file is no error");
});

Deno.test("bytes appended with O_APPEND while a log is capped land after its kept part", async () => {
  await using dir = await scratch("chump-cap-");
  const path = join(dir.path, "b.err.log");
  const writer = await Deno.open(path, { append: true, create: true });
  const enc = new TextEncoder();
  await writer.write(enc.encode("x".repeat(3 << 20)));
  const capping = capLog(path, 2 << 20);
  await writer.write(enc.encode("END\n"));
  const dropped = await capping;
  await writer.write(enc.encode("AFTER\n"));
  writer.close();
  const text = await Deno.readTextFile(path);
  assert(dropped > 0);
  assert(text.endsWith("END\nAFTER\n"), JSON.stringify(text.slice(-20)));
  equal(text.length, (3 << 20) + 10 - dropped);
});

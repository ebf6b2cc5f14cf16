import { equal } from "node:assert/strict";
import { linesOut } from "../lib/cli/lines_out.ts";

const text = (chunks: Uint8Array[]) => chunks.map((c) => new TextDecoder().decode(c)).join("");

Deno.test("lines wait for the end of the synchronous work, then go out in one write", async () => {
  const writes: Uint8Array[] = [];
  const out = linesOut({ writeSync: (p) => (writes.push(p.slice()), p.length) });
  for (let i = 0; i < 1000; i++) out.line(`WOULD DISPATCH: G-${i}`);
  equal(writes.length, 0, "nothing written while the loop runs");
  await Promise.resolve();
  equal(writes.length, 1, "one write for a thousand short lines");
  equal(text(writes).split("\n").length, 1001);
});

Deno.test("a writer that takes part of the bytes gets the rest; 64 KiB waiting is written at once; a gone stream is no error", () => {
  const writes: Uint8Array[] = [];
  // A pipe that takes at most 1000 bytes a write.
  const out = linesOut({
    writeSync: (p) => (writes.push(p.slice(0, 1000)), Math.min(p.length, 1000)),
  });
  const long = "x".repeat(70_000);
  out.line(long);
  equal(text(writes), `${long}\n`, "written whole, in pieces, before the microtask");
  const broken = linesOut({
    writeSync: () => {
      throw new Deno.errors.BrokenPipe("gone");
    },
  });
  broken.line("a");
  broken.flush(); // does not throw: the line is dropped
});

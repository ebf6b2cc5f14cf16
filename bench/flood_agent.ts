/**
 * A bench agent: writes `<MB>` megabytes to stderr as fast as the reader
 * takes them (one ERROR line in ten), then `FAIL: flood wrote N bytes in T ms`
 * and exits 1.
 *
 * @module
 */
const megabytes = Number(Deno.args[0] ?? "1024");
const lines: string[] = [];
let size = 0;
for (let n = 0; size < 1024 * 1024; n++) {
  const line = n % 10 === 0 ? `ERROR flood line ${n} went wrong\n` : `info flood line ${n} fine\n`;
  lines.push(line);
  size += line.length;
}
const block = new TextEncoder().encode(lines.join("").slice(0, 1024 * 1024));
const t0 = performance.now();
let written = 0;
for (let i = 0; i < megabytes; i++) {
  let off = 0;
  while (off < block.length) off += await Deno.stderr.write(block.subarray(off));
  written += block.length;
}
const took = Math.round(performance.now() - t0);
await Deno.stderr.write(
  new TextEncoder().encode(`\nFAIL: flood wrote ${written} bytes in ${took} ms\n`),
);
Deno.exit(1);

import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { createStderrTail, TAIL_LINES } from "../lib/process/stderr_tail.ts";

const enc = new TextEncoder();

/** Feed `text` to a fresh tail in chunks of `size` bytes, end it, return its lines. */
function tailOf(text: string | Uint8Array, size = Infinity, maxLines?: number): string[] {
  const tail = createStderrTail({ maxLines });
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  const step = Math.max(1, Math.min(size, bytes.length));
  for (let i = 0; i < bytes.length; i += step) tail.push(bytes.subarray(i, i + step));
  tail.end();
  return tail.lines();
}

Deno.test("only lines containing WARN, ERROR, FAIL or PANIC are kept, case-insensitively", () => {
  const text = [
    "compiling crate",
    "warning: unused variable",
    "WARN disk almost full",
    "Error: boom",
    "test foo ... FAILED",
    "thread 'main' panicked at src/lib.rs:1",
    "all good",
    "errors: 0",
    "fai l and err or are not keywords",
    "PANIC",
  ].join("\n") + "\n";
  deepEqual(tailOf(text), [
    "warning: unused variable",
    "WARN disk almost full",
    "Error: boom",
    "test foo ... FAILED",
    "thread 'main' panicked at src/lib.rs:1",
    "errors: 0",
    "PANIC",
  ]);
});

Deno.test("exactly the last 64 matching lines are kept, oldest first, however the bytes are chunked", () => {
  const lines: string[] = [];
  for (let i = 0; i < 1000; i++) lines.push(`ERROR line ${i}`, `info chatter ${i}`);
  const text = lines.join("\n") + "\n";
  const want = Array.from({ length: TAIL_LINES }, (_, k) => `ERROR line ${1000 - TAIL_LINES + k}`);
  for (const size of [Infinity, 1, 7, 64, 4096]) {
    deepEqual(tailOf(text, size), want, `chunks of ${size} bytes`);
  }
  deepEqual(tailOf(text, Infinity, 3), ["ERROR line 997", "ERROR line 998", "ERROR line 999"]);
});

Deno.test("fewer than 64 matching lines are all kept, spread over many chunks", () => {
  const tail = createStderrTail();
  tail.push(enc.encode("WARN a\nchatter\n"));
  tail.push(enc.encode("chatter\n"));
  tail.push(enc.encode("ERROR b\n"));
  deepEqual(tail.lines(), ["WARN a", "ERROR b"]);
});

Deno.test("UTF-8 characters split across chunks decode intact", () => {
  const text = "WARN héllo → 😀 ünïcödé\nERROR 日本語のエラー\n";
  for (const size of [1, 2, 3]) {
    deepEqual(tailOf(text, size), ["WARN héllo → 😀 ünïcödé", "ERROR 日本語のエラー"]);
  }
});

Deno.test("invalid UTF-8 becomes replacement characters, never an exception", () => {
  const bytes = new Uint8Array([...enc.encode("WARN bad "), 0xff, 0xfe, 0x0a, 0xe2, 0x82]);
  deepEqual(tailOf(bytes, 1), ["WARN bad \ufffd\ufffd"]);
});

Deno.test("CRLF line endings: the trailing \\r is not part of the line", () => {
  deepEqual(tailOf("WARN one\r\nok\r\nERROR two\r\n"), ["WARN one", "ERROR two"]);
  deepEqual(tailOf("WARN one\r\nok\r\nERROR two\r\n", 1), ["WARN one", "ERROR two"]);
});

Deno.test("control characters are removed from kept lines", () => {
  deepEqual(tailOf("\u001b[31mERROR\u001b[0m red\tand\u0007bell\n"), [
    "[31mERROR [0m red and bell",
  ]);
});

Deno.test("a 1 MB line without a newline is cut to maxLineLength while the rest is dropped", () => {
  const tail = createStderrTail({ maxLineLength: 4096 });
  tail.push(enc.encode("ERROR "));
  const block = enc.encode("x".repeat(64 * 1024));
  for (let i = 0; i < 16; i++) tail.push(block); // 1 MiB, no newline
  tail.push(enc.encode("\nWARN after\n"));
  const [long, after] = tail.lines();
  equal(long.length, 4096);
  assert(long.startsWith("ERROR xxx"), long.slice(0, 20));
  assert(long.endsWith("x…"), "the cut is marked");
  equal(after, "WARN after");
});

Deno.test("a line without a newline does not grow memory, however long it gets", () => {
  const tail = createStderrTail();
  const block = enc.encode("x".repeat(64 * 1024));
  tail.push(enc.encode("PANIC "));
  const before = Deno.memoryUsage().heapUsed;
  const total = 512 * 1024 * 1024; // 512 MiB of one line
  for (let sent = 0; sent < total; sent += block.length) tail.push(block);
  const grown = Deno.memoryUsage().heapUsed - before;
  console.log(`heap growth after a 512 MiB line: ${(grown / 1e6).toFixed(1)} MB`);
  // Keeping the line would take >= 512 MB; young garbage stays far below this.
  assert(grown < 128 * 1024 * 1024, `heap grew by ${grown} bytes`);
  tail.end();
  equal(tail.lines().length, 1);
  equal(tail.lines()[0].length, 4096);
  equal(tail.bytes, total + 6);
});

Deno.test("a line longer than maxLineLength inside one chunk is cut too", () => {
  const [line] = tailOf(`WARN ${"y".repeat(100)}\n`, Infinity);
  equal(line.length, 105);
  const tail = createStderrTail({ maxLineLength: 10 });
  tail.push(enc.encode(`chatter\nWARN ${"y".repeat(100)}\nok\n`));
  deepEqual(tail.lines(), ["WARN yyyy…"]);
});

Deno.test("a keyword split across chunks inside one long line still matches", () => {
  const tail = createStderrTail({ maxLineLength: 8 });
  tail.push(enc.encode(`${"z".repeat(100)} ER`));
  tail.push(enc.encode("ROR at the end\n"));
  deepEqual(tail.lines(), ["zzzzzzz…"]);
});

Deno.test("a keyword beyond the cut of a long line still makes it match", () => {
  const tail = createStderrTail({ maxLineLength: 8 });
  tail.push(enc.encode(`${"z".repeat(5000)}`));
  tail.push(enc.encode(`${"z".repeat(5000)} failed\nquiet ${"q".repeat(9000)}\n`));
  deepEqual(tail.lines(), ["zzzzzzz…"]);
});

Deno.test("a final line without a newline counts once end() is called", () => {
  const tail = createStderrTail();
  tail.push(enc.encode("ok\nWARN no newline at the end"));
  deepEqual(tail.lines(), []);
  tail.end();
  deepEqual(tail.lines(), ["WARN no newline at the end"]);
});

Deno.test("bytes counts every byte seen, matching or not", () => {
  const tail = createStderrTail();
  tail.push(enc.encode("chatter\n"));
  tail.push(new Uint8Array(0));
  tail.push(enc.encode("é"));
  tail.end();
  equal(tail.bytes, 10);
});

Deno.test("a flood of chunks without any keyword keeps nothing", () => {
  const tail = createStderrTail();
  const chunk = enc.encode("info: compiled module in 12ms\n".repeat(2000));
  for (let i = 0; i < 200; i++) tail.push(chunk);
  tail.end();
  deepEqual(tail.lines(), []);
  equal(tail.bytes, chunk.length * 200);
});

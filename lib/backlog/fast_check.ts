/**
 * The one pass over a backlog file's bytes before the fast scanner reads it
 * (lib/backlog/fast_lines.ts): where its newlines are, and whether every
 * byte is one the scanner reads. Refused (undefined): bytes that are not
 * UTF-8, controls (tabs and CR too), DEL, C1 controls, a BOM, U+FFFE/U+FFFF;
 * the full parser decides those files.
 *
 * @module
 */

/**
 * Where the newlines are, after checking every byte; undefined when one is
 * not what the scanner reads. A small file is checked by the runtime's own
 * decoder (no JIT to warm up), a big one four bytes at a time.
 *
 * @example
 * ```ts
 * checkedNewlinesOf(new TextEncoder().encode("a\nb\n")); // Int32Array [1, 3]
 * ```
 */
export function checkedNewlinesOf(bytes: Uint8Array): Int32Array | undefined {
  return bytes.length < SMALL ? decodedNewlines(bytes) : checkedNewlines(bytes);
}

/** Below this many bytes, the runtime's decoder checks the file (see {@linkcode decodedNewlines}). */
const SMALL = 4 << 20;

/** Characters the scanner leaves to the full parser: controls (tab, CR), DEL, C1, a BOM, U+FFFE/F. */
// deno-lint-ignore no-control-regex
const UNUSUAL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff]/;

/**
 * Where the newlines are of a small file, checked by decoding it strictly
 * (UTF-8) and one regular expression; undefined as {@linkcode checkedNewlines}.
 *
 * @example
 * ```ts
 * decodedNewlines(new TextEncoder().encode("a\nb\n")); // Int32Array [1, 3]
 * ```
 */
export function decodedNewlines(bytes: Uint8Array): Int32Array | undefined {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    if (UNUSUAL.test(text)) return undefined;
  } catch {
    return undefined; // not UTF-8: the full path says so
  }
  const found: number[] = [];
  for (let p = bytes.indexOf(0x0a); p >= 0; p = bytes.indexOf(0x0a, p + 1)) found.push(p);
  return Int32Array.from(found);
}

/**
 * Where the newlines are, after checking every byte; undefined when one is
 * not what the scanner reads (see the module's doc). Four bytes at a time
 * where they are plain ASCII (no high bit, nothing under 0x20, no DEL);
 * byte by byte where not. The same answers as {@linkcode decodedNewlines}
 * (a differential test holds them to it).
 *
 * @example
 * ```ts
 * checkedNewlines(new TextEncoder().encode("a\tb\n")); // undefined: a tab
 * ```
 */
export function checkedNewlines(bytes: Uint8Array): Int32Array | undefined {
  const n = bytes.length;
  const words = new Uint32Array(bytes.buffer, 0, Math.floor(bytes.buffer.byteLength / 4));
  const base = bytes.byteOffset;
  let found = new Int32Array(1024);
  let count = 0;
  const lastWord = Math.floor((base + n) / 4);
  let p = 0;
  while (p < n) {
    if (((base + p) & 3) === 0) {
      // Four bytes at a time while they are plain ASCII: no high bit, nothing under 0x20, no DEL.
      let wi = (base + p) >>> 2;
      while (wi < lastWord) {
        const w = words[wi];
        const x = w ^ 0x7f7f7f7f;
        if (((w | ((w - 0x20202020) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) !== 0) break;
        wi++;
      }
      p = wi * 4 - base;
      if (p >= n) break;
    }
    const b = bytes[p];
    if (b >= 0x20 && b < 0x7f) {
      p++;
    } else if (b === 0x0a) {
      if (count === found.length) {
        const grown = new Int32Array(found.length * 2);
        grown.set(found);
        found = grown;
      }
      found[count++] = p++;
    } else if (b < 0x80) {
      return undefined; // a control, a tab, CR, DEL
    } else {
      p = utf8End(bytes, p);
      if (p === 0) return undefined;
    }
  }
  return found.subarray(0, count);
}

/**
 * The index after the UTF-8 sequence starting at `i` (a byte >= 0x80);
 * 0 when it is not valid UTF-8, or is a C1 control, a BOM, U+FFFE or U+FFFF.
 */
function utf8End(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  const c1 = bytes[i + 1];
  if (b >= 0xc2 && b <= 0xdf) {
    // C1 controls (and NEL) are U+0080-U+009F: the full parser's.
    return cont(c1) && !(b === 0xc2 && c1 < 0xa0) ? i + 2 : 0;
  }
  if (b >= 0xe0 && b <= 0xef) {
    const c2 = bytes[i + 2];
    if (!cont(c1) || !cont(c2)) return 0;
    if (b === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (b === 0xed && c1 > 0x9f) return 0; // a surrogate
    if (b === 0xef && c1 === 0xbb && c2 === 0xbf) return 0; // BOM
    if (b === 0xef && c1 === 0xbf && c2 >= 0xbe) return 0; // U+FFFE, U+FFFF
    return i + 3;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (!cont(c1) || !cont(bytes[i + 2]) || !cont(bytes[i + 3])) return 0;
    if ((b === 0xf0 && c1 < 0x90) || (b === 0xf4 && c1 > 0x8f)) return 0;
    return i + 4;
  }
  return 0;
}

/** A UTF-8 continuation byte. */
function cont(x: number | undefined): boolean {
  return x !== undefined && x >= 0x80 && x <= 0xbf;
}

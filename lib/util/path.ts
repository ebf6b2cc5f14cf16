/**
 * POSIX paths, the few operations this program needs (`join`, `resolve`,
 * `dirname`, `basename`, `relative`, a file URL's path), with node:path's
 * results (a differential test holds them to it). Its own because importing
 * `node:path` starts Deno's Node compatibility, ~9 ms of every cold start.
 *
 * @module
 */

/** The separator of `PATH`'s entries. */
export const delimiter = ":";

/** `path`'s segments with `.` and `..` resolved (`..` kept above a relative start). */
function segments(path: string, absolute: boolean): string[] {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(part);
  }
  return out;
}

/**
 * `path` normalised: `.` and `..` resolved, repeated slashes one; a trailing
 * slash kept; "." for nothing.
 *
 * @example
 * ```ts
 * normalize("a//b/../c/"); // "a/c/"
 * ```
 */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  let body = segments(path, absolute).join("/");
  if (body === "" && !absolute) body = ".";
  if (body !== "" && path.endsWith("/")) body += "/";
  return absolute ? `/${body}` : body;
}

/**
 * The parts joined with `/`, normalised.
 *
 * @example
 * ```ts
 * join("/repo", "docs", "../gaps.yaml"); // "/repo/gaps.yaml"
 * ```
 */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

/**
 * The absolute path of the parts, right to left until one is absolute, from
 * the working directory; no trailing slash.
 *
 * @example
 * ```ts
 * resolve("/repo", "docs", "gaps.yaml"); // "/repo/docs/gaps.yaml"
 * ```
 */
export function resolve(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    if (parts[i] !== "") path = path === "" ? parts[i] : `${parts[i]}/${path}`;
  }
  if (!path.startsWith("/")) path = path === "" ? Deno.cwd() : `${Deno.cwd()}/${path}`;
  return `/${segments(path, true).join("/")}`;
}

/**
 * The directory part of `path` (node's rules: "." for none, "/" at the root).
 *
 * @example
 * ```ts
 * dirname("/repo/docs/gaps.yaml"); // "/repo/docs"
 * ```
 */
export function dirname(path: string): string {
  if (path === "") return ".";
  const rooted = path.startsWith("/");
  let end = -1;
  let inSlashes = true;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] === "/") {
      if (!inSlashes) {
        end = i;
        break;
      }
    } else inSlashes = false;
  }
  if (end === -1) return rooted ? "/" : ".";
  if (rooted && end === 1) return "//";
  return path.slice(0, end);
}

/**
 * The last part of `path` (trailing slashes ignored).
 *
 * @example
 * ```ts
 * basename("/repo/docs/"); // "docs"
 * ```
 */
export function basename(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === "/") end--;
  const trimmed = path.slice(0, end);
  if (trimmed === "/") return "";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/**
 * The path from `from` to `to` ("" when they are the same).
 *
 * @example
 * ```ts
 * relative("/repo/a", "/repo/b/c"); // "../b/c"
 * ```
 */
export function relative(from: string, to: string): string {
  const a = segments(resolve(from), true);
  const b = segments(resolve(to), true);
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return [...a.slice(common).map(() => ".."), ...b.slice(common)].join("/");
}

/**
 * The path of a `file:` URL.
 *
 * @example
 * ```ts
 * fileUrlPath(new URL("file:///repo/a%20b.ts")); // "/repo/a b.ts"
 * ```
 */
export function fileUrlPath(url: URL): string {
  if (url.protocol !== "file:") throw new TypeError(`not a file URL: ${url.href}`);
  return decodeURIComponent(url.pathname);
}

/**
 * Debian's headless chromium driven by puppeteer-core over a pipe (no
 * browser download, no network), and reading the first line a server
 * prints: shared by the dashboard's tests and its bench.
 *
 * @module
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { runProcess } from "./process.ts";

/** A browser with one page; disposing of it closes the browser. */
export interface OpenBrowser {
  browser: Browser;
  page: Page;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Start chromium (from PATH; `.ci/run` installs Debian's) with one page of `width` x `height`. */
export async function openBrowser(width = 1280, height = 720): Promise<OpenBrowser> {
  const found = await runProcess("sh", ["-c", "command -v chromium"]).catch(() => undefined);
  const browser = await puppeteer.launch({
    executablePath: found?.stdout.trim() || "/usr/bin/chromium",
    pipe: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
  }).catch((e) => {
    throw new Error(`chromium could not be started (.ci/run installs it): ${e}`);
  });
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  return { browser, page, [Symbol.asyncDispose]: () => browser.close() };
}

/** The first line of `stream` (without reading further); the stream stays usable. */
export async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return text.split("\n")[0];
}

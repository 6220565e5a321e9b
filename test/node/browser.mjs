// browser: drives Debian's Chromium through playwright-core for Go tests.
// Commands arrive as JSON lines on stdin, reports leave as JSON lines on
// stdout (see lib/jsonl.mjs for the reply convention).
//
// Usage: node browser.mjs [--profile=DIR] [--chromium=PATH] [--arg=CHROMIUM_FLAG ...]
// DIR is the --user-data-dir (created fresh if missing, removed on exit; a
// temporary one by default). Prints {"type":"ready"} once Chromium runs.
//
// Commands (all may carry "seq" to get a reply):
//   {"cmd":"open","url":"..."}                      reply {page:"p1"}
//   {"cmd":"goto","page":"p1","url":"..."}
//   {"cmd":"eval","page":"p1","js":"...","arg":any} reply {result}
//       js is an expression or a function source; a function is called with
//       arg. Promises are awaited. The result must be JSON-serialisable.
//   {"cmd":"screenshot","page":"p1","path":"/abs/file.png"}
//   {"cmd":"close","page":"p1"}
//   {"cmd":"exit"}
// Reports: {"type":"console","page","level","text"},
// {"type":"pageerror","page","message"}, {"type":"closed","page"},
// {"type":"crash","page"}.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { send, serve } from "./lib/jsonl.mjs";

const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];

function parseArgs(argv) {
  const out = { profile: undefined, chromium: "/usr/bin/chromium", extra: [] };
  for (const arg of argv) {
    let m;
    if ((m = /^--profile=(.+)$/.exec(arg))) out.profile = m[1];
    else if ((m = /^--chromium=(.+)$/.exec(arg))) out.chromium = m[1];
    else if ((m = /^--arg=(.+)$/.exec(arg))) out.extra.push(m[1]);
    else throw new Error(`unknown argument ${arg}`);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const profile = args.profile ?? mkdtempSync(join(tmpdir(), "rtcio-chromium-"));
mkdirSync(profile, { recursive: true });

let context;
const pages = new Map();
let nextPage = 1;

function removeProfile() {
  try {
    rmSync(profile, { recursive: true, force: true });
  } catch (err) {
    process.stderr.write(`removing ${profile}: ${err.message}\n`);
  }
}

try {
  // headless:false stops playwright from adding its own --headless flag;
  // ours (--headless=new) is the only one Chromium sees.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: false,
    args: [...CHROMIUM_ARGS, ...args.extra],
    ignoreDefaultArgs: ["--mute-audio"],
    timeout: 60000,
  });
} catch (err) {
  removeProfile();
  process.stderr.write(`launching chromium: ${err?.stack ?? err}\n`);
  send({ type: "fatal", error: `launching chromium: ${err?.message ?? err}` });
  process.exit(1);
}

// launchPersistentContext opens one blank page; closing it keeps page
// handles purely what tests asked for.
for (const p of context.pages()) await p.close().catch(() => {});

function track(page) {
  const id = `p${nextPage++}`;
  pages.set(id, page);
  page.on("console", (msg) => {
    send({ type: "console", page: id, level: msg.type(), text: msg.text() });
  });
  page.on("pageerror", (err) => {
    send({ type: "pageerror", page: id, message: err?.stack ?? err?.message ?? String(err) });
  });
  page.on("crash", () => send({ type: "crash", page: id }));
  page.on("close", () => {
    pages.delete(id);
    send({ type: "closed", page: id });
  });
  return id;
}

function need(msg) {
  const page = pages.get(msg.page);
  if (!page) throw new Error(`unknown page ${JSON.stringify(msg.page)}`);
  return page;
}

async function open(msg) {
  if (typeof msg.url !== "string") throw new Error("missing url");
  const page = await context.newPage();
  const id = track(page);
  try {
    await page.goto(msg.url, { waitUntil: "load", timeout: msg.timeout ?? 30000 });
  } catch (err) {
    await page.close().catch(() => {});
    throw err;
  }
  return { page: id };
}

async function gotoCmd(msg) {
  const page = need(msg);
  if (typeof msg.url !== "string") throw new Error("missing url");
  await page.goto(msg.url, { waitUntil: "load", timeout: msg.timeout ?? 30000 });
  return {};
}

// evaluate runs js in the page. Playwright evaluates a string as an
// expression; to let tests pass a function source with an argument, a
// source that evaluates to a function is called with arg inside the page.
async function evaluate(msg) {
  const page = need(msg);
  if (typeof msg.js !== "string") throw new Error("missing js");
  const result = await page.evaluate(
    async ({ js, arg }) => {
      // Indirect eval: global scope, like a <script> in the page.
      const value = (0, eval)(`(${js}\n)`);
      const out = typeof value === "function" ? await value(arg) : await value;
      return out === undefined ? null : out;
    },
    { js: msg.js, arg: msg.arg ?? null },
  );
  return { result };
}

async function screenshot(msg) {
  const page = need(msg);
  if (typeof msg.path !== "string") throw new Error("missing path");
  await page.screenshot({ path: msg.path, fullPage: true });
  return {};
}

async function close(msg) {
  const page = need(msg);
  await page.close();
  return {};
}

send({ type: "ready" });

serve({ open, goto: gotoCmd, eval: evaluate, screenshot, close }, async () => {
  try {
    await context.close();
  } finally {
    removeProfile();
  }
});

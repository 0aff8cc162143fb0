// A scripted headless Chromium for the browser tests (tests/tests/browser_board.rs):
// one JSON command per line on stdin, run in order, one JSON answer per line on stdout with the
// same `id`: {"id":..,"ok":true,...} or {"id":..,"ok":false,"error":KIND,"message":..}.
// Each person is a `session` (a browser context of its own: its own cookies) with one
// page. Errors thrown by a page's scripts are collected and returned by `errors`.
//
//   node driver.mjs '{"chromium":"/usr/bin/chromium"}'
//
// Commands (every one takes "session" except launch-level ones):
//   open {session, width, height}            a new context and page at that size
//   goto {session, url}                      -> {status, url}
//   signIn {session, url}                    opens a sign-in link, presses the button,
//                                            waits to leave /signin -> {url}
//   text {session, selector}                 -> {text} (innerText of the first match)
//   waitText {session, selector, not, timeoutMs}
//                                            waits until the text exists and differs
//                                            from `not` -> {text}
//   waitSelector {session, selector, timeoutMs}
//   waitGone {session, selector, timeoutMs}     until no element matches
//   count {session, selector}                -> {count} of elements matching now
//   click {session, selector}
//   fill {session, selector, value}
//   fetch {session, path, method}            fetch() from the page (its cookie) -> {status, body}
//   screenshot {session, path}               full page PNG
//   errors {session}                         -> {errors: [...]}
//   close                                    closes Chromium; exit status 1 if any
//                                            command failed (also when stdin closes)
import { chromium } from "playwright-core";
import readline from "node:readline";

const config = JSON.parse(process.argv[2] || "{}");
const browser = await chromium.launch({
  executablePath: config.chromium || "/usr/bin/chromium",
  headless: true,
  // Containers run as root without a user namespace sandbox.
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=zh-CN"],
});
const sessions = new Map();

function session(name) {
  const s = sessions.get(name);
  if (!s) throw Object.assign(new Error(`no session ${name}`), { kind: "bad-command" });
  return s;
}

const commands = {
  async open({ session: name, width = 1920, height = 1080 }) {
    const context = await browser.newContext({ viewport: { width, height }, locale: "zh-CN", timezoneId: "Asia/Shanghai" });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push("console: " + m.text());
    });
    sessions.set(name, { context, page, errors });
    return {};
  },
  async goto({ session: name, url }) {
    const { page } = session(name);
    const resp = await page.goto(url, { waitUntil: "networkidle" }).catch(async (e) => {
      // An EventSource keeps the network busy: fall back to the load event.
      if (String(e).includes("Timeout")) return null;
      throw e;
    });
    return { status: resp ? resp.status() : null, url: page.url() };
  },
  async signIn({ session: name, url, timeoutMs = 20000 }) {
    const { page } = session(name);
    await page.goto(url, { waitUntil: "load" });
    await page.click("#sign-in", { timeout: timeoutMs });
    await page.waitForURL((u) => !u.pathname.startsWith("/signin"), { timeout: timeoutMs });
    return { url: page.url() };
  },
  async text({ session: name, selector }) {
    const { page } = session(name);
    const text = await page.locator(selector).first().innerText({ timeout: 5000 });
    return { text };
  },
  async waitText({ session: name, selector, not = null, timeoutMs = 20000 }) {
    const { page } = session(name);
    const handle = await page.waitForFunction(
      ([sel, old]) => {
        const e = document.querySelector(sel);
        if (!e) return false;
        const t = e.innerText;
        return old === null || t !== old ? t : false;
      },
      [selector, not],
      { timeout: timeoutMs, polling: 50 },
    );
    return { text: await handle.jsonValue() };
  },
  async waitSelector({ session: name, selector, timeoutMs = 20000 }) {
    const { page } = session(name);
    await page.waitForSelector(selector, { timeout: timeoutMs });
    return {};
  },
  async waitGone({ session: name, selector, timeoutMs = 20000 }) {
    const { page } = session(name);
    await page.waitForSelector(selector, { state: "detached", timeout: timeoutMs });
    return {};
  },
  async count({ session: name, selector }) {
    return { count: await session(name).page.locator(selector).count() };
  },
  async click({ session: name, selector }) {
    await session(name).page.click(selector, { timeout: 10000 });
    return {};
  },
  async fill({ session: name, selector, value }) {
    await session(name).page.fill(selector, String(value), { timeout: 10000 });
    return {};
  },
  async fetch({ session: name, path, method = "GET" }) {
    const { page } = session(name);
    return page.evaluate(
      async ([p, m]) => {
        const r = await fetch(p, { method: m, credentials: "same-origin" });
        return { status: r.status, body: (await r.text()).slice(0, 200000) };
      },
      [path, method],
    );
  },
  async screenshot({ session: name, path }) {
    await session(name).page.screenshot({ path, fullPage: true });
    return { path };
  },
  async errors({ session: name }) {
    return { errors: session(name).errors };
  },
  async close() {
    // Answer first, then leave once the answer is written.
    setImmediate(shutdown);
    return {};
  },
};

const rl = readline.createInterface({ input: process.stdin });
// Commands run one after another, in the order they arrive.
let queue = Promise.resolve();
let failed = false;
rl.on("line", (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      failed = true;
      process.stdout.write(JSON.stringify({ id: null, ok: false, error: "bad-command", message: String(e) }) + "\n");
      return;
    }
    const run = commands[cmd.cmd];
    try {
      if (!run) throw Object.assign(new Error(`unknown command ${cmd.cmd}`), { kind: "bad-command" });
      const out = await run(cmd);
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, ...out }) + "\n");
    } catch (e) {
      failed = true;
      const kind = e.kind || (e.name === "TimeoutError" ? "timeout" : "exception");
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: false, error: kind, message: String(e.message || e) }) + "\n");
    }
  });
});
/** Closes Chromium and exits: 1 if any command failed. */
async function shutdown() {
  // Chromium can take its time to shut down on a busy machine; the harness waits 10 s.
  await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(failed ? 1 : 0);
}
rl.on("close", async () => {
  await queue;
  await shutdown();
});

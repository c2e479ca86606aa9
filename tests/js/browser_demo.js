// Click through the demo page in headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core): two tabs of ONE browser context, so they share the session cookie.
//
//   node browser_demo.js '<config-json>'     config: { url, screenshot? }
//
// Prints ONE JSON object as the last stdout line:
//   { steps: [...], counts: {...}, states: {...}, console: [...], error? }
// Every wait is bounded (page.waitForFunction with a timeout).

const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.argv[2]);
const WAIT = 15000;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const text = (page, id) => page.textContent(`[data-testid="${id}"]`);

function waitText(page, id, expected, timeout = WAIT) {
  return page.waitForFunction(
    ([sel, want]) => {
      const el = document.querySelector(sel);
      return el !== null && el.textContent.trim() === want;
    },
    [`[data-testid="${id}"]`, String(expected)], { timeout });
}

async function main() {
  const out = { steps: [], console: [] };
  let browser;
  try {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS,
                                      timeout: 60000 });
    const context = await browser.newContext();
    const tabs = [];
    for (let i = 0; i < 2; i++) {
      const page = await context.newPage();
      page.on("console", (m) => out.console.push(`tab${i + 1} ${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => out.console.push(`tab${i + 1} pageerror: ${e.message}`));
      // one tab after the other: the first one's GET / creates the session both share
      await page.goto(cfg.url, { timeout: WAIT });
      await waitText(page, "state", "connected");
      tabs.push(page);
    }
    const [tab1, tab2] = tabs;
    out.steps.push("both connected");
    const cookies = await context.cookies();
    out.cookies = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
    const before = [Number(await text(tab1, "count")), Number(await text(tab2, "count"))];
    out.counts = { before };
    await tab1.click('[data-testid="incr"]');
    const want = before[0] + 1;
    await waitText(tab1, "count", want);
    await waitText(tab2, "count", want);
    out.steps.push("both counted");
    await tab2.click('[data-testid="incr"]');
    await waitText(tab1, "count", want + 1);
    await waitText(tab2, "count", want + 1);
    out.counts.after = [Number(await text(tab1, "count")), Number(await text(tab2, "count"))];
    out.steps.push("both counted again");
    await tab1.click('[data-testid="logout"]');
    await waitText(tab1, "state", "disconnected");
    await waitText(tab2, "state", "disconnected");
    out.steps.push("both disconnected");
    out.states = { tab1: await text(tab1, "state"), tab2: await text(tab2, "state") };
    if (cfg.screenshot) await tab2.screenshot({ path: cfg.screenshot });
    // after logging out, a reload meets a fresh session: the count starts again at 0
    await tab2.reload({ timeout: WAIT });
    await waitText(tab2, "state", "connected");
    out.counts.reloaded = Number(await text(tab2, "count"));
    out.steps.push("reloaded");
  } catch (err) {
    out.error = String(err && err.stack ? err.stack : err);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  console.log(JSON.stringify(out));
}

main();

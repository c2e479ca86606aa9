// Two browser users (two contexts, so two sessions) chat through demo/chat.py in headless
// Chromium. node browser_chat.js '{"url": "..."}' → one JSON line.
const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.argv[2]);
const WAIT = 15000;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const sel = (id) => `[data-testid="${id}"]`;

async function user(browser, name, out) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => out.errors.push(`${name}: ${e.message}`));
  await page.goto(cfg.url, { timeout: WAIT });
  await page.fill(sel("name"), name);
  await page.click(sel("save-name"));
  await page.waitForFunction((n) => document.querySelector('[data-testid="here"]').textContent.includes(n),
                             name, { timeout: WAIT });
  return page;
}

const logHas = (page, text) => page.waitForFunction(
  (t) => document.querySelector('[data-testid="log"]').textContent.includes(t), text, { timeout: WAIT });

(async () => {
  const out = { errors: [], steps: [] };
  let browser;
  try {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS, timeout: 60000 });
    const ann = await user(browser, "ann", out);
    const bob = await user(browser, "bob", out);
    await ann.waitForFunction(() => document.querySelector('[data-testid="here"]').textContent === "ann, bob",
                              null, { timeout: WAIT });
    out.steps.push("both here");
    await ann.fill(sel("text"), "hello bob");
    await ann.click(sel("send"));
    await logHas(bob, "ann: hello bob");
    await logHas(ann, "me: hello bob");
    out.steps.push("ann to bob");
    await bob.fill(sel("text"), "hi ann");
    await bob.click(sel("send"));
    await logHas(ann, "bob: hi ann");
    out.steps.push("bob to ann");
    out.annLog = await ann.textContent(sel("log"));
    out.bobLog = await bob.textContent(sel("log"));
  } catch (e) {
    out.error = String(e);
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(0);
})();

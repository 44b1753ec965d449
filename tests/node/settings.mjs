// Drives the settings page in a real browser (Debian's Chromium through playwright-core):
// load, edit a matrix cell, see validation reject a bad value, save, reload and see it
// persisted, preview a route, switch the mode. Prints what it saw as JSON; exits 1 on a
// failed expectation. Usage: node settings.mjs BASE_URL TOKEN SCREENSHOT_DIR
import { chromium } from "playwright-core";

const [base, token, shots] = process.argv.slice(2);
const out = {};
const expect = (cond, what) => { if (!cond) throw new Error(`expected: ${what}`); };
// What a user sees: the window from the top, the sticky header where it belongs (a full-page
// capture would paint it across the middle).
const shot = async (page, name) => {
  if (!shots) return;
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${shots}/${name}.png` });
};

const browser = await chromium.launch({
  executablePath: process.env.PAI_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#gauge");
  await page.waitForFunction(() => document.querySelector("#modes input") !== null);
  await page.waitForFunction(() => document.querySelectorAll("#requests tr").length > 0);
  out.state = await page.textContent("#quota-state");
  out.percent = await page.textContent("#quota-percent");
  out.requests = await page.$$eval("#requests tr", (rows) => rows.length);
  expect(!page.url().includes("token="), "the token is taken out of the address bar");
  await shot(page, "overview");
  // Turn one kind of notification off; it is saved to the config.
  expect(await page.isChecked("#n-providers"), "notifications are on by default");
  expect(await page.isHidden("#autostart-row"), "start at login is an app setting, not a browser one");
  // Wait for the save itself, not for time to pass.
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/api/config") && r.request().method() === "PATCH" && r.status() === 200),
    page.uncheck("#n-providers"),
  ]);

  await page.click("#tab-routing");
  const cell = '[data-key="routing.matrix.caution.simple"]';
  await page.waitForSelector(`${cell} .chip`);
  out.before = await page.$$eval(`${cell} .chip > span`, (s) => s.map((x) => x.textContent));

  // A target that names no provider: the backend validator rejects it, Save stays off.
  await page.fill(`${cell} input.add`, "nosuchprovider");
  await page.press(`${cell} input.add`, "Enter");
  await page.waitForSelector("#problems li");
  out.problem = await page.textContent("#problems li");
  expect(out.problem.includes("names no provider"), "validation names the problem");
  expect(await page.isDisabled("#save"), "Save is disabled while invalid");
  expect(await page.$eval(cell, (c) => c.classList.contains("invalid")), "the cell is marked");
  await shot(page, "routing-invalid");

  // Remove it again, add the fallback provider instead: valid, saved.
  await page.click(`${cell} .chip:has-text("nosuchprovider") .x`);
  await page.waitForFunction(() => document.querySelectorAll("#problems li").length === 0);
  await page.fill(`${cell} input.add`, "fallback");
  await page.press(`${cell} input.add`, "Enter");
  await page.waitForFunction(() => !document.querySelector("#save").disabled);
  await page.click("#save");
  await page.waitForFunction(() => document.querySelector("#saved").textContent.startsWith("Saved"));

  await page.reload();
  await page.click("#tab-overview");
  await page.waitForFunction(() => document.querySelector("#n-quota").checked);
  out.providersNotified = await page.isChecked("#n-providers");
  await page.click("#tab-routing");
  await page.waitForSelector(`${cell} .chip`);
  out.after = await page.$$eval(`${cell} .chip > span`, (s) => s.map((x) => x.textContent));
  expect(out.after.join(",") === [...out.before, "fallback"].join(","), `persisted after reload: ${out.after}`);

  // Route preview shows a decision.
  await page.selectOption("#preview-class", "complex");
  await page.click("#preview");
  await page.waitForFunction(() => document.querySelector("#preview-result").textContent.includes("Chain:"));
  out.preview = await page.textContent("#preview-result");
  await shot(page, "routing");

  // Mode switch from the overview.
  await page.click("#tab-overview");
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/api/mode") && r.request().method() === "PUT" && r.status() === 200),
    page.check('#modes input[value="local-only"]'),
  ]);
  await page.click("#tab-providers");
  await page.waitForSelector("#providers tr");
  out.providers = await page.$$eval("#providers tr td:first-child strong", (s) => s.map((x) => x.textContent));
  await shot(page, "providers");
  await page.click("#tab-queue");
  await page.waitForSelector("#waiting:not(:empty)");
  await shot(page, "queue");
  out.errors = errors;
  expect(errors.length === 0, `no script errors: ${errors}`);
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}

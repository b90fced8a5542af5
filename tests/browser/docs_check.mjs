// Opens labcat's /docs in headless Chromium (Debian's, driven by playwright-core) and checks
// that Swagger UI renders every operation of /openapi.json, offers the key schemes, loads
// nothing from outside the server, and can call the API from the page. Saves a screenshot.
//
//   LABCAT_URL=http://127.0.0.1:8080 SCREENSHOT=target/browser/docs.png node docs_check.mjs

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.LABCAT_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const screenshot = process.env.SCREENSHOT || 'target/browser/docs.png';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const origin = new URL(base).origin;

function fail(message) {
  console.error(`docs_check: FAIL: ${message}`);
  process.exitCode = 1;
}

const spec = await (await fetch(`${base}/openapi.json`)).json();
const operations = Object.values(spec.paths).flatMap((item) =>
  Object.keys(item).filter((key) =>
    ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(key),
  ),
);

// Playwright gives Chromium a fresh, empty profile; the flags keep it from calling home,
// which this machine's closed network refuses (and an offline docs page must not need).
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const outside = [];
  const problems = [];
  // Anything not from the server is refused and remembered: the page must work offline.
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || new URL(url).origin === origin) {
      return route.continue();
    }
    outside.push(url);
    return route.abort();
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });

  const response = await page.goto(`${base}/docs`, { waitUntil: 'networkidle' });
  if (!response || response.status() !== 200) fail(`/docs answered ${response?.status()}`);
  if (!page.url().endsWith('/docs/index.html')) fail(`/docs ended at ${page.url()}`);

  await page.waitForSelector('.opblock', { timeout: 20000 });
  const rendered = await page.locator('.opblock').count();
  console.log(`docs_check: ${rendered} operations rendered, ${operations.length} in /openapi.json`);
  if (rendered !== operations.length) {
    fail(`${rendered} operations rendered, but /openapi.json has ${operations.length}`);
  }
  const title = (await page.locator('.info .title').first().innerText()).trim();
  if (!title.startsWith(spec.info.title)) fail(`title is '${title}'`);
  if ((await page.locator('button.authorize').count()) === 0) fail('no Authorize button');

  // Call the API from the page: GET /healthz needs no key.
  const health = page.locator('#operations-service-get_health');
  await health.locator('.opblock-summary').click();
  await health.locator('button.try-out__btn').click();
  await health.locator('button.execute').click();
  const status = health.locator('.live-responses-table tr.response .response-col_status').first();
  await status.waitFor({ timeout: 10000 });
  const code = (await status.innerText()).trim();
  if (code !== '200') fail(`GET /healthz from the page answered '${code}'`);
  else console.log('docs_check: GET /healthz from the page: 200');

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`docs_check: screenshot in ${screenshot}`);

  if (outside.length) fail(`the page asked for outside URLs: ${outside.join(', ')}`);
  if (problems.length) fail(problems.join('; '));
} finally {
  await browser.close();
}

if (!process.exitCode) console.log('docs_check: ok');

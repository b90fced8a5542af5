// Drives labcat's web UI in headless Chromium (Debian's, through playwright-core): signs in,
// finds an entry with the search box and a metadata filter, edits a field and a metadata key
// and saves (the API shows it), sees a change made through the API appear without reloading,
// resolves a conflict with a second browser, checks that no script-readable storage holds a
// key or the session, that nothing is fetched from elsewhere, and that axe-core finds no
// serious or critical violation on any page. Prints the time to render 100 rows and the
// bytes of the first page load. Screenshots: $SCREENSHOTS/ui-*.png.
//
//   LABCAT_URL=http://127.0.0.1:8080 ADMIN_KEY=lc_... BOB_KEY=lc_... node ui_check.mjs

import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.LABCAT_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const adminKey = process.env.ADMIN_KEY;
const bobKey = process.env.BOB_KEY;
const shots = process.env.SCREENSHOTS || 'target/browser';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const origin = new URL(base).origin;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
mkdirSync(shots, { recursive: true });

let failures = 0;
const pending = [];
function fail(message) {
  console.error(`ui_check: FAIL: ${message}`);
  failures += 1;
}
function ok(message) {
  console.log(`ui_check: ok: ${message}`);
}
function check(condition, message) {
  if (condition) ok(message); else fail(message);
}

// ---- the API, with a key (as another client would change things) ----
async function call(method, path, body, key = adminKey, headers = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'X-API-KEY': key, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, data: text ? JSON.parse(text) : null };
}

// ---- seed: 120 entries, one of them the one to find ----
const target = await call('POST', '/data_entries', {
  raw_name: 'gan_target_run.raw', char_source_type: 'xps',
  metadata: { operator: 'jdoe', substrate: 'GaN', temperature: { value: 720, unit: 'degC' } },
});
if (target.status !== 201) throw new Error(`seeding: ${target.status} ${JSON.stringify(target.data)}`);
const targetId = target.data.data_id;
// A decoy with the same name words but another operator: only the metadata filter tells.
await call('POST', '/data_entries', { raw_name: 'gan_target_decoy.raw', char_source_type: 'xps', metadata: { operator: 'other' } });
const types = ['rheed_video', 'sem', 'raman', 'afm'];
const seeded = await Promise.all(Array.from({ length: 118 }, (_, i) => call('POST', '/data_entries', {
  raw_name: `run_${String(i).padStart(3, '0')}.raw`, char_source_type: types[i % types.length],
  raw_size_gb: i / 10, metadata: { operator: i % 2 ? 'alice' : 'bob', index: i },
})));
if (seeded.some((r) => r.status !== 201)) throw new Error('seeding the 118 entries failed');
const bobsEntry = await call('POST', '/data_entries', { raw_name: 'bobs_secret.raw', char_source_type: 'sem' }, bobKey);
const projects = (await call('GET', '/projects')).data;
const feed = await fetch(`${base}/events`, { headers: { 'X-API-KEY': adminKey, Accept: 'text/event-stream' }, signal: AbortSignal.timeout(1500) })
  .then((r) => { const live = r.status === 200; r.body?.cancel().catch(() => {}); return live; })
  .catch(() => false);
console.log(`ui_check: change feed (GET /events) ${feed ? 'is served' : 'is NOT served by this build'}`);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const outside = [];
const problems = [];
async function newContext(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  // Anything not from the server is refused and remembered: the UI must work offline.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || new URL(url).origin === origin) return route.continue();
    outside.push(url);
    return route.abort();
  });
  return context;
}
function watch(page, name) {
  page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    // Refused on purpose by the checks below (403/401/404/412 answers are expected there).
    if (/status of (401|403|404|412|422)/.test(text)) return;
    if (!feed && /EventSource|events/.test(text)) return;
    problems.push(`${name}: console error: ${text}`);
  });
  return page;
}

async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) {
    fail(`axe on ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')})`);
  }
  if (!bad.length) ok(`axe on ${name}: no serious or critical violations (${result.violations.length} minor)`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `ui-${name}.png`), fullPage: true });
}

async function noSecretsIn(page, name, sessionValue) {
  const stored = await page.evaluate(() => ({
    cookie: document.cookie,
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
  }));
  const all = `${stored.cookie} ${stored.local} ${stored.session}`;
  check(!all.includes(adminKey) && !all.includes('lc_') && !all.includes('lcs_') && !(sessionValue && all.includes(sessionValue)),
    `${name}: document.cookie, localStorage and sessionStorage hold no key or session (cookie '${stored.cookie}')`);
}

async function signIn(page, key, { keyboard = false } = {}) {
  await page.goto(`${base}/ui`);
  if (keyboard) {
    // Skip link, then the field: the whole sign-in works from the keyboard.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement?.id === 'api-key'), 'Tab reaches the API key field');
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

const rows = (page) => page.locator('#rows tr[data-id]');

try {
  // ---------------- first load and sign in ----------------
  const contextA = await newContext();
  const pageA = watch(await contextA.newPage(), 'A');
  let firstBytes = 0;
  const counting = async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) firstBytes += sizes.responseBodySize + sizes.responseHeadersSize;
  };
  pageA.on('requestfinished', counting);
  const first = await pageA.goto(`${base}/`, { waitUntil: 'networkidle' });
  pageA.off('requestfinished', counting);
  check(first.status() === 200 && pageA.url().endsWith('/ui'), `/ redirects to /ui (${pageA.url()})`);
  console.log(`ui_check: MEASURE first page load (/ → /ui, sign-in page): ${firstBytes} bytes transferred`);
  check(firstBytes < 200 * 1024, `the first page load transfers under 200 KB (${(firstBytes / 1024).toFixed(1)} KB)`);
  await axe(pageA, 'sign-in page');
  await shot(pageA, 'signin');

  await pageA.getByLabel('API key').fill('lc_not_a_real_key_at_all_000000000000000000');
  await pageA.getByRole('button', { name: 'Sign in' }).click();
  await pageA.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
  ok('a wrong key is refused with a message');

  let signedInBytes = 0;
  const countingSignedIn = async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) signedInBytes += sizes.responseBodySize + sizes.responseHeadersSize;
  };
  await signIn(pageA, adminKey);
  await rows(pageA).first().waitFor();
  pageA.on('requestfinished', countingSignedIn);
  await pageA.reload({ waitUntil: 'networkidle' });
  pageA.off('requestfinished', countingSignedIn);
  console.log(`ui_check: MEASURE signed-in entries page load (HTML, CSS, JS and the API answers, 25 rows): ${signedInBytes} bytes`);
  const sessionCookie = (await contextA.cookies()).find((c) => c.name === 'labcat_session');
  check(sessionCookie && sessionCookie.httpOnly && sessionCookie.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
  await noSecretsIn(pageA, 'entries page', sessionCookie?.value);
  await axe(pageA, 'entries page');
  await shot(pageA, 'entries');

  // ---------------- 100 rows ----------------
  await pageA.getByLabel('Rows per page').selectOption('100');
  const started = Date.now();
  await pageA.getByRole('button', { name: 'Apply filters' }).click();
  await pageA.waitForFunction(() => document.querySelectorAll('#rows tr[data-id]').length === 100);
  const total = Date.now() - started;
  await pageA.waitForFunction(() => window.labcatTimings.entriesPainted !== undefined && window.labcatTimings.entriesRows === 100);
  const timings = await pageA.evaluate(() => window.labcatTimings);
  console.log(`ui_check: MEASURE 100-row entry table: ${timings.entriesRender.toFixed(1)} ms to build the rows (DOM), ${timings.entriesPainted.toFixed(1)} ms until laid out and painted, ${timings.entriesLoad.toFixed(1)} ms with the search and facets requests, ${total} ms from the click until the test saw 100 rows`);
  check(timings.entriesRows === 100, 'the table shows 100 rows');
  check(await pageA.locator('#count').innerText() === '120 entries found', 'the total is shown (120 entries found)');
  check(await pageA.getByRole('button', { name: 'Next page' }).isEnabled(), 'there is a next page');
  await pageA.getByRole('button', { name: 'Next page' }).click();
  await pageA.waitForFunction(() => document.querySelectorAll('#rows tr[data-id]').length === 20);
  ok('the next page has the other 20');
  await shot(pageA, 'entries-100');

  // ---------------- search + metadata filter ----------------
  await pageA.getByLabel('Metadata filters').fill('operator=jdoe');
  await pageA.getByLabel('Search').fill('gan_target');
  await pageA.getByLabel('Search').press('Enter');
  await pageA.waitForFunction(() => document.querySelectorAll('#rows tr[data-id]').length === 1);
  const link = pageA.getByRole('link', { name: 'gan_target_run.raw' });
  check(await link.count() === 1, 'search "gan_target" with metadata filter operator=jdoe finds exactly the target');
  check(await pageA.locator('#facets').innerText().then((t) => t.includes('xps')), 'facet counts are shown');
  check(pageA.url().includes('meta=operator%3Djdoe'), 'the filters are in the address (reload and back keep them)');

  // ---------------- edit and save ----------------
  await link.click();
  await pageA.getByLabel('Raw name').waitFor();
  check(pageA.url().endsWith(`/ui/entries/${targetId}`), 'the link opens the entry page');
  check(await pageA.getByLabel('Pipeline status').evaluate((e) => e.tagName) === 'SELECT', 'Pipeline status is a select');
  check(await pageA.getByLabel('Unit of temperature').inputValue() === 'degC', 'a quantity shows its unit');
  await pageA.getByLabel('Pipeline status').selectOption('success');
  await pageA.getByLabel('Value of operator').fill('asmith');
  await pageA.getByLabel('New key in the metadata').fill('beamline');
  await pageA.getByRole('button', { name: 'Add key to the metadata' }).click();
  await pageA.getByLabel('Value of beamline').fill('B7');
  await pageA.getByRole('button', { name: 'Delete substrate' }).click();
  await pageA.getByRole('button', { name: 'Save' }).click();
  await pageA.getByText('Saved: revision 2.').waitFor();
  let stored = (await call('GET', `/data_entries/${targetId}`)).data;
  check(stored.pipeline_status === 'success' && stored.metadata.operator === 'asmith' && stored.metadata.beamline === 'B7'
    && !('substrate' in stored.metadata) && stored.metadata.temperature.unit === 'degC',
  `the API shows the saved change (${JSON.stringify({ status: stored.pipeline_status, metadata: stored.metadata })})`);
  await pageA.locator('#history li').filter({ hasText: 'Revision 2' }).waitFor();
  check(await pageA.locator('#history').innerText().then((t) => t.includes('metadata.operator') && t.includes('by admin')),
    'the history shows the change, its diff and its actor');
  await noSecretsIn(pageA, 'entry page', sessionCookie?.value);
  await axe(pageA, 'entry page');
  await shot(pageA, 'entry');

  // ---------------- under a schema: violations next to the field ----------------
  const schemaPath = `/projects/${target.data.project_id}/schemas/xps`;
  const schema = await call('PUT', schemaPath, {
    mode: 'enforce', schema: { type: 'object', properties: { beamline: { type: 'string', maxLength: 3 } } },
  });
  check(schema.status === 200 || schema.status === 201, `a schema is set (${schema.status})`);
  await pageA.getByLabel('Value of beamline').fill('TOO_LONG');
  await pageA.getByRole('button', { name: 'Save' }).click();
  await pageA.getByText(/^Not saved:/).waitFor();
  const nodeError = pageA.locator('.tree li').filter({ has: pageA.getByLabel('Value of beamline') }).locator('.error');
  check(await nodeError.count() === 1 && (await nodeError.innerText()).length > 0,
    `the schema's violation is shown next to the metadata key (${await nodeError.first().innerText().catch(() => 'none')})`);
  await axe(pageA, 'entry page with a schema violation');
  await shot(pageA, 'entry-invalid');
  await pageA.getByRole('button', { name: 'Discard changes' }).click();
  check(await pageA.getByLabel('Value of beamline').inputValue() === 'B7', 'discarding the edit shows the stored value again');
  await call('DELETE', schemaPath);

  // ---------------- live: a change through the API appears without reloading ----------------
  if (feed) {
    await pageA.waitForFunction(() => window.labcatTimings.feedOpen === true);
    await pageA.evaluate(() => { window.__notReloaded = true; });
    const changedAt = Date.now();
    await call('PATCH', `/data_entries/${targetId}`, { raw_size_gb: 2.5 });
    try {
      await pageA.waitForFunction(() => document.querySelector('#f-raw_size_gb')?.value === '2.5', null, { timeout: 3000 });
      check(await pageA.evaluate(() => window.__notReloaded === true), `an API change shows on the open entry within 3 s without a reload (${Date.now() - changedAt} ms)`);
    } catch {
      fail('an API change did not show on the open entry within 3 s');
    }
  } else {
    pending.push('live update of the open entry (GET /events is not served by this build)');
  }

  // ---------------- conflict with a second browser ----------------
  const contextB = await newContext();
  const pageB = watch(await contextB.newPage(), 'B');
  await signIn(pageB, adminKey, { keyboard: true });
  await pageB.goto(`${base}/ui/entries/${targetId}`);
  await pageB.getByLabel('Raw name').waitFor();
  await pageA.reload();
  await pageA.getByLabel('Raw name').waitFor();
  await pageA.getByLabel('Raw name').fill('renamed_by_a.raw');
  await pageB.getByLabel('Value of beamline').fill('B8');
  await pageB.getByRole('button', { name: 'Save' }).click();
  await pageB.getByText(/Saved: revision/).waitFor();
  await pageA.getByRole('button', { name: 'Save' }).click();
  const notice = pageA.locator('#conflict-notice');
  await notice.waitFor();
  const noticeText = await notice.innerText();
  check(noticeText.includes('Someone else changed this entry') && noticeText.includes('metadata.beamline') && noticeText.includes('"B8"'),
    'saving over a newer revision says someone else changed it and shows what they changed');
  stored = (await call('GET', `/data_entries/${targetId}`)).data;
  check(stored.raw_name === 'gan_target_run.raw' && stored.metadata.beamline === 'B8', 'nothing was overwritten silently');
  await axe(pageA, 'entry page with a conflict');
  await shot(pageA, 'conflict');
  await pageA.getByRole('button', { name: 'Reapply my changes' }).click();
  await pageA.getByText(/Saved: revision/).waitFor();
  stored = (await call('GET', `/data_entries/${targetId}`)).data;
  check(stored.raw_name === 'renamed_by_a.raw' && stored.metadata.beamline === 'B8',
    `reapplying keeps both changes (${stored.raw_name}, beamline ${stored.metadata.beamline})`);
  const sessionB = (await contextB.cookies()).find((c) => c.name === 'labcat_session');
  check(sessionB && sessionB.value !== sessionCookie?.value, 'the second browser has its own session');
  await noSecretsIn(pageB, 'second browser', sessionB?.value);

  // ---------------- live: the entry table ----------------
  await pageA.goto(`${base}/ui`);
  await rows(pageA).first().waitFor();
  if (feed) {
    await pageA.waitForFunction(() => window.labcatTimings.feedOpen === true);
    await pageA.evaluate(() => { window.__notReloaded = true; });
    const first = await rows(pageA).first().getAttribute('data-id');
    const changedAt = Date.now();
    await call('PATCH', `/data_entries/${first}`, { raw_name: 'renamed_live.raw' });
    try {
      await pageA.getByRole('link', { name: 'renamed_live.raw' }).waitFor({ timeout: 3000 });
      check(await pageA.evaluate(() => window.__notReloaded === true), `an API change shows in the entry table within 3 s without a reload (${Date.now() - changedAt} ms)`);
    } catch {
      fail('an API change did not show in the entry table within 3 s');
    }
  } else {
    pending.push('live update of the entry table (GET /events is not served by this build)');
  }

  // ---------------- another user's entry is "not found" ----------------
  const missing = await pageA.goto(`${base}/ui/entries/${bobsEntry.data.data_id}`);
  check(missing.status() === 404 && (await pageA.locator('h1').innerText()) === 'Not found', "another user's entry is the not-found page (404)");
  const reallyMissing = await pageA.goto(`${base}/ui/entries/00000000-0000-7000-8000-000000000000`);
  check(reallyMissing.status() === 404, 'a missing entry is the same page');
  await axe(pageA, 'not-found page');
  await shot(pageA, 'not-found');

  // ---------------- API keys ----------------
  await pageA.goto(`${base}/ui/keys`);
  await pageA.locator('#key-rows tr').first().waitFor();
  await pageA.getByLabel('Key name').fill('from the browser');
  await pageA.getByRole('button', { name: 'Create key' }).click();
  const secret = await pageA.getByLabel('New key').inputValue();
  check(/^lc_[A-Za-z0-9]{40}$/.test(secret), 'a new key is shown once');
  check((await call('GET', '/data_entries?limit=1', undefined, secret)).status === 200, 'the new key works');
  await axe(pageA, 'keys page');
  await shot(pageA, 'keys');
  await pageA.getByRole('button', { name: /^Revoke key from the browser/ }).click();
  await pageA.waitForFunction(() => !document.querySelector('[aria-label^="Revoke key from the browser"]'));
  check((await call('GET', '/data_entries?limit=1', undefined, secret)).status === 401, 'revoking it from the page ends it');
  await noSecretsIn(pageA, 'keys page', sessionCookie?.value);

  // ---------------- members ----------------
  const personal = projects.find((p) => p.personal) || projects[0];
  await pageA.goto(`${base}/ui?project=${personal.id}`);
  await rows(pageA).first().waitFor();
  await pageA.getByRole('link', { name: 'Members' }).click();
  await pageA.getByLabel('User id').fill('bob');
  await pageA.getByRole('button', { name: 'Add member' }).click();
  await pageA.getByLabel('Role of bob').waitFor();
  await pageA.getByLabel('Role of bob').selectOption('editor');
  await pageA.waitForFunction(() => document.querySelector('#live')?.textContent.includes('bob is now editor'));
  const members = (await call('GET', `/projects/${personal.id}/members`)).data;
  check(members.some((m) => m.user_id === 'bob' && m.role === 'editor'), 'an admin adds a member and changes the role');
  await axe(pageA, 'members page');
  await shot(pageA, 'members');

  // ---------------- the phone-sized screen ----------------
  const phone = await newContext({ width: 390, height: 844 });
  const pageP = watch(await phone.newPage(), 'phone');
  await signIn(pageP, adminKey);
  await rows(pageP).first().waitFor();
  const overflow = await pageP.evaluate(() => document.documentElement.scrollWidth);
  check(overflow <= 391, `at 390×844 the entries page does not scroll sideways (width ${overflow})`);
  await axe(pageP, 'entries page at 390×844');
  await shot(pageP, 'entries-phone');
  await pageP.goto(`${base}/ui/entries/${targetId}`);
  await pageP.getByLabel('Raw name').waitFor();
  const entryOverflow = await pageP.evaluate(() => document.documentElement.scrollWidth);
  check(entryOverflow <= 391, `at 390×844 the entry page does not scroll sideways (width ${entryOverflow})`);
  await axe(pageP, 'entry page at 390×844');
  await shot(pageP, 'entry-phone');

  // ---------------- a cross-site write with the cookie fails ----------------
  const forged = await contextA.request.patch(`${base}/data_entries/${targetId}`, {
    data: { raw_name: 'forged.raw' }, headers: { Origin: 'https://evil.example.org', 'X-Labcat-CSRF': '1' },
  });
  check(forged.status() === 403, `a write with the cookie from another origin is refused (${forged.status()})`);

  // ---------------- sign out ----------------
  await pageA.goto(`${base}/ui`);
  await pageA.getByRole('button', { name: 'Sign out' }).click();
  await pageA.getByLabel('API key').waitFor();
  const after = await contextA.request.get(`${base}/data_entries?limit=1`, {
    headers: { Cookie: `labcat_session=${sessionCookie.value}` },
  });
  check(after.status() === 401, 'after signing out the session no longer works');
  check((await contextB.request.get(`${base}/data_entries?limit=1`)).status() === 200, "the other browser's session still works");

  if (outside.length) fail(`the pages asked for outside URLs: ${outside.join(', ')}`);
  else ok('no request left the origin');
  if (problems.length) fail(problems.join('; '));
} finally {
  await browser.close();
}

for (const item of pending) console.log(`ui_check: PENDING: ${item}`);
console.log(`ui_check: screenshots in ${shots}/ui-*.png`);
if (failures) {
  console.error(`ui_check: ${failures} check(s) failed`);
  process.exitCode = 1;
} else {
  console.log(`ui_check: ok${pending.length ? ` (${pending.length} pending)` : ''}`);
}

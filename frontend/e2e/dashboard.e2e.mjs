// End to end: the dashboard in real headless Chromium (Debian's, driven by
// playwright-core) against the real `nexa` host serving the real components
// on a fresh embedded database. One browser session walks through what a
// person does; the steps run in order and share the page.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { startHost } from './host.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '..', 'test-results', 'screenshots');
const ADMIN = { username: 'admin', password: 'admin-dev-password' };
const API_PATHS = /^\/(auth|items|users|health)(\/|$)/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

const run = Date.now().toString(36);
const member = { username: `e2e_${run}`, email: `e2e_${run}@example.com`, password: 'correct horse battery' };

let host;
let browser;
let page;
const apiRequests = [];
const pageErrors = [];
/** Content-Security-Policy violations, as the page's console and its DOM event report them. */
const cspViolations = [];
let cspViolationsChecked = 0;

/** Chromium's console messages for a blocked load, inline code, eval or frame. */
const CSP_CONSOLE = /Content[ -]Security[ -]Policy|^Refused to /i;

/** Runs in every document before its own scripts: reports each violation to the suite. */
function reportCspViolations() {
  addEventListener(
    'securitypolicyviolation',
    (event) =>
      void window.nexaCspViolation({
        page: location.pathname,
        directive: event.effectiveDirective,
        blocked: event.blockedURI,
        source: `${event.sourceFile}:${event.lineNumber}`,
        sample: event.sample,
      }),
    true,
  );
}

/** Waits until `check()` holds, polling; fails with `message` after `ms`. */
async function eventually(check, message, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(message());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The positive control for the CSP check: a script injected inline into the current
 * page must not run, and both the console and the `securitypolicyviolation` event
 * must report it (so a page without a policy, or a listener that reports nothing,
 * fails the suite). The expected reports are then dropped.
 */
async function assertInlineScriptRefused() {
  const before = cspViolations.length;
  const ran = await page.evaluate(() => {
    window.nexaInlineRan = false;
    const script = document.createElement('script');
    script.textContent = 'window.nexaInlineRan = true';
    document.head.append(script);
    script.remove();
    return window.nexaInlineRan;
  });
  assert.equal(ran, false, 'an injected inline script ran');
  const reported = () => cspViolations.slice(before);
  await eventually(
    () => reported().some((v) => v.console) && reported().some((v) => v.directive?.startsWith('script-src')),
    () => `the refused inline script was not reported through both channels: ${JSON.stringify(reported())}`,
  );
  cspViolations.splice(before);
}

async function screenshot(name, { fullPage = true } = {}) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage });
}

async function signIn({ username, password }) {
  await page.goto(`${host.url}/app/sign-in`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText(`Signed in as ${username}`).waitFor();
}

/** The table row of the item with this name (found by its own Edit button). */
function row(name) {
  return page.getByRole('row').filter({ has: page.getByRole('button', { name: `Edit ${name}`, exact: true }) });
}

describe('dashboard', { concurrency: false }, () => {
  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    host = await startHost();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.exposeFunction('nexaCspViolation', (violation) => cspViolations.push(violation));
    await context.addInitScript(reportCspViolations);
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (message) => {
      if (CSP_CONSOLE.test(message.text())) {
        cspViolations.push({ console: message.type(), page: new URL(page.url()).pathname, text: message.text() });
      }
    });
    page.on('request', (request) => {
      const url = new URL(request.url());
      // The dashboard's own calls: Swagger UI's "Try it out" sends no traceparent.
      const fromDocs = new URL(request.frame().url()).pathname.startsWith('/api-docs');
      if (url.origin === host.url && API_PATHS.test(url.pathname) && !fromDocs) {
        apiRequests.push({ method: request.method(), path: url.pathname, traceparent: request.headers().traceparent });
      }
    });
    page.on('pageerror', (error) => pageErrors.push(error));
  });

  after(async () => {
    await browser?.close();
    await host?.stop();
  });

  // Each step fails on a violation it caused; the last step catches late reports.
  afterEach(() => {
    const caused = cspViolations.slice(cspViolationsChecked);
    cspViolationsChecked = cspViolations.length;
    assert.deepEqual(caused, [], 'Content-Security-Policy violations');
  });

  test("the dashboard's Content-Security-Policy is served and refuses inline script", async () => {
    const response = await page.goto(`${host.url}/app/sign-in`);
    const policy = response.headers()['content-security-policy'] ?? '';
    assert.match(policy, /script-src 'self'/);
    assert.doesNotMatch(policy, /unsafe-/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await assertInlineScriptRefused();
  });

  test('signs in with a username and password', async () => {
    await page.goto(`${host.url}/app/sign-in`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const failure = page.getByRole('alert').filter({ hasText: 'Incorrect username or password' });
    await failure.waitFor();
    assert.match(await failure.innerText(), /Request id: \S+/);
    await screenshot('sign-in');

    // Without a mouse: type, Tab to the password, Enter submits.
    await page.getByLabel('Username').focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.getByText(`Signed in as ${ADMIN.username}`).waitFor();
    const tokens = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.equal(tokens, '{}{}', 'no token is kept in web storage');
  });

  test('shows the system status', async () => {
    await page.goto(`${host.url}/`);
    const card = page.getByRole('region', { name: 'System status' });
    await card.getByText('Overall status: Operational').waitFor();
    const text = await card.innerText();
    assert.match(text, /Database\s+Healthy · [\d.]+ ms/);
    assert.match(text, /Cache\s+Healthy · [\d.]+ ms/);
    assert.match(text, /Version\s+0\.1\.0/);
    await page.getByRole('region', { name: 'Items' }).getByRole('cell', { name: 'Laptop', exact: true }).waitFor();
    await screenshot('overview');
  });

  test('creates, edits and deletes an item, and shows a 422 by its field', async () => {
    const name = `Desk lamp ${run}`;
    const renamed = `Brass desk lamp ${run}`;
    await page.goto(`${host.url}/app/items?size=50`);

    await page.getByRole('button', { name: 'New item' }).click();
    const create = page.getByRole('dialog', { name: 'New item' });
    await create.getByLabel('Name').fill(name);
    await create.getByLabel('Price').fill('19.90');
    await create.getByRole('button', { name: 'Create item' }).click();
    await page.getByRole('status').filter({ hasText: `Created “${name}”.` }).waitFor();
    assert.match(await row(name).innerText(), /19\.90/);

    // Newest first is the API's order=desc, so it holds across pages: page 1 of 10 starts
    // with the new item.
    await page.goto(`${host.url}/app/items`);
    await page.getByRole('button', { name: 'Sort by ID' }).click();
    await page.waitForURL(/order=desc/);
    await row(name).waitFor();
    const firstRow = page.getByRole('row').nth(1);
    assert.match(await firstRow.innerText(), new RegExp(name));
    assert.ok(apiRequests.some((r) => r.method === 'GET' && r.path === '/items'));
    await page.goto(`${host.url}/app/items?size=50`);

    // The API refuses a third decimal (never rounds); its message appears by the price.
    await row(name).getByRole('button', { name: `Edit ${name}`, exact: true }).click();
    const edit = page.getByRole('dialog', { name: `Edit “${name}”` });
    await edit.getByLabel('Name').fill(renamed);
    await edit.getByLabel('Price').fill('24.999');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    const price = edit.getByLabel('Price');
    await page.waitForFunction((el) => el.getAttribute('aria-invalid') === 'true', await price.elementHandle());
    const description = await price.evaluate((el) =>
      (el.getAttribute('aria-describedby') ?? '')
        .split(' ')
        .map((id) => document.getElementById(id)?.textContent ?? '')
        .join(' '),
    );
    assert.match(description, /decimal/i, `the price's description names the problem: ${description}`);
    assert.match(await edit.getByRole('alert').innerText(), /Request id: \S+/);
    await price.scrollIntoViewIfNeeded();
    await screenshot('item-422', { fullPage: false });

    await price.fill('24.99');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: `Saved “${renamed}”.` }).waitFor();
    assert.match(await row(renamed).innerText(), /24\.99/);

    await row(renamed).getByRole('button', { name: `Mark unavailable ${renamed}`, exact: true }).click();
    await page.getByRole('status').filter({ hasText: `“${renamed}” is now unavailable.` }).waitFor();
    await screenshot('items');

    await row(renamed).getByRole('button', { name: `Delete ${renamed}`, exact: true }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete item?' });
    await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('status').filter({ hasText: `Deleted “${renamed}”.` }).waitFor();
    // The notice comes first; the row goes when the list is fetched again.
    await row(renamed).waitFor({ state: 'detached', timeout: 5000 });
    assert.equal(await row(renamed).count(), 0);
    const gone = await fetch(`${host.url}/items?limit=1000`).then((r) => r.json());
    assert.ok(!gone.some((item) => item.name === renamed), 'the item is gone from the API too');

    const methods = new Set(apiRequests.filter((r) => r.path.startsWith('/items/')).map((r) => r.method));
    for (const method of ['PUT', 'PATCH', 'DELETE']) assert.ok(methods.has(method), `the page sent ${method}`);
  });

  test('an admin registers a user, with the rules checked before sending', async () => {
    await page.goto(`${host.url}/app/users`);
    await page.getByRole('heading', { name: 'All users' }).waitFor();
    const postsToUsers = () => apiRequests.filter((r) => r.method === 'POST' && r.path.startsWith('/users')).length;
    await page.getByLabel('Email').fill(member.email);
    await page.getByLabel('Username').fill(member.username);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.waitForFunction(() => document.querySelector('#register-password')?.getAttribute('aria-invalid') === 'true');
    assert.equal(postsToUsers(), 0, 'a too-short password is refused before anything is sent');

    await page.getByLabel('Password').fill(member.password);
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: `Created user “${member.username}”` }).waitFor();
    await page.getByRole('cell', { name: member.username, exact: true }).waitFor();

    // The same person again: the API's 409 appears by the field it names.
    await page.getByLabel('Email').fill(member.email);
    await page.getByLabel('Username').fill(member.username);
    await page.getByLabel('Password').fill(member.password);
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByText(/^(Email already registered|Username already taken)\.$/).first().waitFor();
    const flagged = await page.evaluate(() =>
      ['register-email', 'register-username'].filter(
        (id) => document.getElementById(id)?.getAttribute('aria-invalid') === 'true',
      ),
    );
    assert.equal(flagged.length, 1, `the clashing field is marked: ${flagged}`);
    assert.equal(postsToUsers(), 2);
    await screenshot('users');
  });

  test("locks another user's items with the reason", async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    await signIn(member);
    await page.goto(`${host.url}/app/items?size=50`);
    // A reload restores the session through the refresh cookie: until it is
    // back the rows are locked as for a visitor; wait for the signed-in view.
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await row('Laptop').getByText('Only the owner or an admin can change this item.').waitFor({ timeout: 5000 });
    const edit = row('Laptop').getByRole('button', { name: 'Edit Laptop', exact: true });
    await edit.waitFor();
    assert.equal(await edit.isDisabled(), true);
    assert.equal(await row('Laptop').getByRole('button', { name: 'Delete Laptop', exact: true }).isDisabled(), true);
    assert.match(await row('Laptop').innerText(), /Only the owner or an admin can change this item\./);
    assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0, 'no admin navigation');
    assert.equal(await page.getByRole('button', { name: 'New item' }).isDisabled(), false);
    await screenshot('items-locked');
  });

  test('works on a phone-sized screen and closes dialogs with Escape', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${host.url}/app/items`);
    await row('Laptop').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    await screenshot('phone-items');
    await page.getByRole('button', { name: 'New item' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'New item' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('stays signed in across a reload (refresh cookie)', async () => {
    await page.reload();
    await page.getByText(`Signed in as ${member.username}`).waitFor();
    const refreshes = apiRequests.filter((r) => r.path === '/auth/refresh');
    assert.ok(refreshes.length >= 1, 'the reload restored the session through /auth/refresh');
  });

  test('after signing out nothing can be changed', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    assert.ok(apiRequests.some((r) => r.method === 'POST' && r.path === '/auth/logout'));
    assert.equal(await page.getByRole('button', { name: 'New item' }).isDisabled(), true);
    assert.equal(await row('Laptop').getByRole('button', { name: 'Edit Laptop', exact: true }).isDisabled(), true);
    // The session is over on the server too: a reload does not bring it back.
    await page.reload();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    assert.equal(await page.getByText(/Signed in as/).count(), 0);
    await page.goto(`${host.url}/app/users`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  test('the API docs page lists every operation and tries one out', async () => {
    const response = await page.goto(`${host.url}/api-docs`);
    const policy = response.headers()['content-security-policy'] ?? '';
    assert.match(policy, /script-src 'self';/);
    assert.doesNotMatch(policy, /unsafe-eval/);
    await page.locator('.opblock').first().waitFor();
    const documented = await fetch(`${host.url}/openapi.json`).then((r) => r.json());
    const operations = Object.values(documented.paths).flatMap((item) =>
      Object.keys(item).filter((key) => ['get', 'post', 'put', 'patch', 'delete'].includes(key)),
    );
    assert.equal(await page.locator('.opblock').count(), operations.length);
    // Expanded, an operation renders its parameters, schemas and examples; "Try it out"
    // is on (api-docs/main.ts), so Execute sends it and shows the live response.
    const health = page.locator('#operations-platform-getHealth');
    await health.locator('.opblock-summary').click();
    await health.getByRole('button', { name: 'Execute' }).click();
    await health.locator('.live-responses-table .response-col_status').filter({ hasText: '200' }).waitFor();
    await screenshot('api-docs');
    await assertInlineScriptRefused();
  });

  test('every API request carried a W3C traceparent', () => {
    assert.ok(apiRequests.length >= 10, `captured ${apiRequests.length} API requests`);
    const missing = apiRequests.filter((r) => !TRACEPARENT.test(r.traceparent ?? ''));
    assert.deepEqual(missing, [], 'requests without a valid traceparent');
    assert.deepEqual(pageErrors.map(String), [], 'no uncaught errors in the page');
  });

  test('no page broke its Content-Security-Policy', async () => {
    // Reports still in flight from the last page arrive here.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(cspViolations, [], 'Content-Security-Policy violations');
  });
});

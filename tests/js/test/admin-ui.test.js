// The admin web UI in a real headless browser: Debian's chromium driven by playwright-core
// (pinned). Walks the first admin's setup from the link the server prints, the overview, the
// theme switch, sign-out, a refused and an accepted sign-in, and a phone-sized screen; takes
// screenshots into tests/js/screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, JS_ROOT } from '../lib/server.js';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const SHOTS = path.join(JS_ROOT, 'screenshots');

/** The setup link from the server's banner (printed right after the listening line). */
async function setupLink(srv) {
  for (let i = 0; i < 100; i++) {
    const m = /admin setup:\s+(\S+)/.exec(srv.logs().stdout);
    if (m) return m[1];
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no setup link in the banner:\n${srv.logs().stdout}`);
}

describe('admin UI in a browser', () => {
  let srv;
  let browser;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `chromium is needed at ${CHROMIUM} (Debian: apt-get install chromium)`);
    await mkdir(SHOTS, { recursive: true });
    srv = await startServer({ migrations: { '001.sql': 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  });
  after(async () => {
    await browser?.close();
    await srv?.stop();
  });

  it('creates the first admin from the setup link, shows the overview, signs out and in', async () => {
    const link = await setupLink(srv);
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(link);
    await page.getByRole('heading', { name: 'Create the first admin account' }).waitFor();
    // A weak password is refused in place.
    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel(/^Password/).fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').filter({ hasText: /at least 10 characters/ }).waitFor();
    await page.getByLabel(/^Password/).fill('a long admin password');
    await page.getByRole('button', { name: 'Create account' }).click();

    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.equal(await page.locator('#ov-status').textContent(), 'ok');
    assert.match(await page.locator('#ov-version').textContent(), /^\d+\.\d+\.\d+/);
    assert.equal(await page.locator('#ov-tables').textContent(), '1');
    assert.match(await page.locator('#ov-replication').textContent(), /standalone/);
    assert.equal(await page.locator('#who').textContent(), 'admin@example.com');
    await page.screenshot({ path: path.join(SHOTS, 'overview-light.png'), fullPage: true });

    // The theme switch changes the page's colours and is remembered.
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const before = await bg();
    await page.getByRole('button', { name: /theme/i }).click();
    assert.notEqual(await bg(), before);
    await page.screenshot({ path: path.join(SHOTS, 'overview-dark.png'), fullPage: true });
    await page.reload();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.notEqual(await bg(), before);

    // Sign out: back to the sign-in form, and the API refuses the old cookie.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Outpost' }).waitFor();
    const status = await page.evaluate(async () => (await fetch('/_/api/overview')).status);
    assert.equal(status, 401);

    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid email or password' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'sign-in-error.png') });
    await page.getByLabel('Password').fill('a long admin password');
    // Keyboard only: Enter submits the form.
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('heading', { name: 'Overview' }).waitFor();

    // The setup link is spent.
    await page.goto(link);
    await page.getByLabel('Email').fill('second@example.com');
    await page.getByLabel(/^Password/).fill('another long password');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').filter({ hasText: /sign in instead/ }).waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('fits a phone screen', async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/_/`);
    await page.getByRole('heading', { name: 'Sign in to Outpost' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await page.screenshot({ path: path.join(SHOTS, 'sign-in-phone.png') });
    await ctx.close();
  });
});

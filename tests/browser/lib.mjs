// Shared by the browser tests: headless Chromium (Debian's) driven by playwright-core, with a
// fresh profile and everything that would call Google's hosts turned off; axe-core injected
// from the committed copy; page errors, CSP violations and failed requests fail the test.

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const AXE = readFileSync(join(here, 'vendor', 'axe.min.js'), 'utf8');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** A browser; playwright gives it a fresh profile (--user-data-dir) of its own, removed at close. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.MOOT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/**
 * A page (in its own context: its own cookies, so its own session) that records problems:
 * uncaught errors, console errors (CSP violations among them) and requests that failed.
 */
export async function open(browser, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refusal the page asked for and handles (401, 404 from the API) is logged by Chromium
    // as a failed load: responses are checked below instead.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      page.problems.push(`console: ${m.text()}`);
    }
  });
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (r.status() >= 500 || (r.status() >= 400 && !path.startsWith('/api/'))) {
      page.problems.push(`${r.status()} for ${path}`);
    }
  });
  page.on('requestfailed', (r) => {
    // Leaving a page cancels its event stream: not a problem.
    if (!r.url().endsWith('/api/events')) {
      page.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    }
  });
  page.setDefaultTimeout(15000);
  return page;
}

/** Goes to a hash route and waits until the app has drawn it. */
export async function go(page, base, hash) {
  const url = new URL(base);
  url.hash = hash;
  if (page.url().startsWith(url.origin)) {
    await page.evaluate((h) => { window.location.hash = h; }, hash);
  } else {
    await page.goto(url.toString());
  }
  try {
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
    await page.waitForSelector('main h1');
  } catch (error) {
    throw new Error(`${hash} did not show: ${error.message}\n${page.problems.join('\n')}`);
  }
  await page.waitForLoadState('networkidle').catch(() => {});
}

/** Runs axe-core with the WCAG 2.1 A and AA rules; returns the violations. */
export async function audit(page) {
  // Evaluated through the DevTools protocol: the page's CSP (no inline scripts) stays on.
  if (!(await page.evaluate(() => Boolean(window.axe)))) {
    await page.evaluate(AXE);
  }
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
    }));
  });
}

/** Fails with a message. */
export function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** Fails if the page recorded problems. */
export function clean(page, what) {
  check(page.problems.length === 0, `${what}: ${page.problems.join('\n')}`);
}

/** Runs a test body, printing its failure and exiting 1, or exiting 0. */
export async function main(body) {
  const chrome = await launch();
  try {
    await body(chrome.browser);
    console.log('ok');
  } catch (error) {
    console.error(`FAILED: ${error.stack || error}`);
    process.exitCode = 1;
  } finally {
    await chrome.close();
  }
}

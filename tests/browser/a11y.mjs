// (e) axe-core (WCAG 2.1 A and AA rules) finds no violation on any main page, at desktop and
// phone widths; the first run on a node without a hub passes too, and founds a hub in the
// browser; the results page prints without the navigation. With "screenshots": DIR, every
// page is also photographed into DIR (desktop 1280×800 and phone 390×844).

import { main, open, go, audit, check, clean, DESKTOP, PHONE } from './lib.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = JSON.parse(process.argv[2]);

const PAGES = [
  ['dashboard', '#/'],
  ['assemblies', '#/assemblies'],
  ['assembly', `#/assemblies/${args.assembly}`],
  ['members', '#/members'],
  ['proposal', `#/proposals/${args.proposal}`],
  ['ballot', `#/polls/${args.open_poll}`],
  ['results', `#/polls/${args.closed_poll}/results`],
  ['aid-board', '#/aid'],
  ['aid-item', `#/aid/${args.item}`],
  ['aid-pledged', `#/aid/${args.pledged_item}`],
  ['peers', '#/peers'],
  ['merges', '#/merges'],
  ['keys', '#/start'],
];

/** Pages photographed for docs/screenshots. */
const SHOTS = new Set(['dashboard', 'assembly', 'proposal', 'ballot', 'results', 'aid-board', 'aid-item', 'peers']);

const failures = [];

async function visit(page, base, name, hash, width) {
  await go(page, base, hash);
  // Let late sections (suggestions, the ticket) draw.
  await page.waitForTimeout(250);
  const violations = await audit(page);
  for (const v of violations) {
    failures.push(`${name} (${width}): ${v.id} [${v.impact}] ${v.help}\n    ${v.nodes.join('\n    ')}`);
  }
  if (args.screenshots && (SHOTS.has(name) || name === 'first-run')) {
    mkdirSync(args.screenshots, { recursive: true });
    await page.screenshot({ path: join(args.screenshots, `${name}-${width}.png`) });
  }
  console.log(`${name} (${width}): ${violations.length} violations`);
}

await main(async (browser) => {
  for (const [viewport, width] of [[DESKTOP, 'desktop'], [PHONE, 'phone']]) {
    const page = await open(browser, viewport);
    for (const [name, hash] of PAGES) {
      await visit(page, args.url, name, hash, width);
    }
    clean(page, `pages at ${width} width`);
  }

  // The results page on paper: no navigation, no buttons.
  const paper = await open(browser);
  await go(paper, args.url, `#/polls/${args.closed_poll}/results`);
  await paper.emulateMedia({ media: 'print' });
  check(!(await paper.isVisible('header.top')), 'no navigation in print');
  check(!(await paper.isVisible('button.print')), 'no buttons in print');
  check(await paper.isVisible('#winner'), 'the winner in print');
  if (args.screenshots) {
    await paper.screenshot({ path: join(args.screenshots, 'results-print.png'), fullPage: true });
  }

  // The first run: a node with a key and no hub.
  for (const [viewport, width] of [[PHONE, 'phone'], [DESKTOP, 'desktop']]) {
    const fresh = await open(browser, viewport);
    await visit(fresh, args.first_run, 'first-run', '#/', width);
    check((await fresh.textContent('main h1')) === 'Welcome to Moot', 'the first run shows');
    if (width === 'desktop') {
      const form = fresh.locator('form', { hasText: 'Found a hub' });
      await form.locator('input[name=name]').fill('Hall of the first run');
      await form.locator('button[type=submit]').click();
      await fresh.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Hall of the first run: dashboard', null, { timeout: 30000 })
        .catch(async (error) => {
          throw new Error(`founding a hub: ${error.message}\n${await fresh.textContent('main')}\n${fresh.problems.join('\n')}`);
        });
      await visit(fresh, args.first_run, 'founded', '#/', width);
    }
    clean(fresh, `first run at ${width} width`);
  }
  check(failures.length === 0, `axe-core found violations:\n${failures.join('\n')}`);
});

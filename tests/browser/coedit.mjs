// (c) Two nodes synced over the network: text typed on one node's proposal page appears on
// the other node's page without a reload, and the other way round; the caret of someone
// typing stays where it was when the other's edit arrives.

import { main, open, go, check, clean } from './lib.mjs';

const args = JSON.parse(process.argv[2]);
const LIMIT = { timeout: 30000 };

async function value(page) {
  return page.$eval('textarea.editor', (t) => t.value);
}

await main(async (browser) => {
  const a = await open(browser);
  const b = await open(browser);
  await go(a, args.a, `#/proposals/${args.proposal}`);
  await go(b, args.b, `#/proposals/${args.proposal}`);
  const original = await value(a);
  check(original === await value(b), 'both pages start from the same text');

  // Typed at the end on node A…
  await a.click('textarea.editor');
  await a.keyboard.press('Control+End');
  await a.keyboard.type(' Urgent ones within 2 days.', { delay: 15 });
  // …shows on node B's page.
  await b.waitForFunction((t) => document.querySelector('textarea.editor').value === t,
    `${original} Urgent ones within 2 days.`, LIMIT);

  // Typed at the start on node B…
  await b.click('textarea.editor');
  await b.keyboard.press('Control+Home');
  await b.keyboard.type('Tenants agree: ', { delay: 15 });
  await a.waitForFunction(() => document.querySelector('textarea.editor').value.startsWith('Tenants agree: The'), null, LIMIT);
  await b.waitForSelector('text=All changes saved.');
  const caret = 'Tenants agree: '.length;
  check(await b.$eval('textarea.editor', (t) => t.selectionStart) === caret, 'B\'s caret after its typing');

  // A's edit after B's caret arrives on B while B is focused: the caret stays.
  await a.evaluate(() => {
    const t = document.querySelector('textarea.editor');
    const at = t.value.indexOf('landlord') + 'landlord'.length;
    t.focus();
    t.setSelectionRange(at, at);
  });
  await a.keyboard.type(' always', { delay: 15 });
  await b.waitForFunction(() => document.querySelector('textarea.editor').value.includes('landlord always'), null, LIMIT);
  check(await b.evaluate(() => document.activeElement.classList.contains('editor')), 'B kept the focus');
  check(await b.$eval('textarea.editor', (t) => t.selectionStart) === caret, 'B\'s caret stayed where it was');
  const final = await value(b);
  await a.waitForFunction((t) => document.querySelector('textarea.editor').value === t, final, LIMIT);
  console.log(`text on both pages: ${JSON.stringify(final)}`);
  clean(a, 'node A\'s page');
  clean(b, 'node B\'s page');
});

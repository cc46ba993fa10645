// (b) An offer and a matching request posted on the mutual-aid board in the browser, by two
// members of one node: each item's page suggests the other (the offer's page without a
// reload); a pledge's sealed contact shows to the item's author only; the board's filters.

import { main, open, go, check, clean } from './lib.mjs';

const args = JSON.parse(process.argv[2]);

async function post(page, kind, title, category) {
  await page.check(`#kind-${kind}`);
  await page.fill('#post-item input[name=title]', title);
  await page.fill('#post-item input[name=category]', category);
  await page.fill('#post-item input[name=area]', 'N1');
  await page.click('#post-item button[type=submit]');
  await page.waitForFunction((t) => document.querySelector('main h1').textContent.endsWith(t), title);
}

await main(async (browser) => {
  const fay = await open(browser);
  await go(fay, args.url, '#/aid');
  await post(fay, 'offer', 'Spare bike', 'transport');
  check((await fay.textContent('main h1')) === 'Offer: Spare bike', 'the offer\'s page');
  await fay.waitForFunction(() => document.querySelector('#matches')?.textContent.includes('No match yet'))
    .catch(async () => check(false, `no match before the request: ${await fay.textContent('#matches')}`));

  const bob = await open(browser);
  await go(bob, args.url, '#/start');
  await bob.selectOption('#sign-in select[name=member]', args.bob);
  await bob.click('#sign-in button[type=submit]');
  await bob.waitForFunction(() => document.querySelector('#acting')?.textContent.includes('Bob'));
  await go(bob, args.url, '#/aid');
  check((await bob.textContent('#board')).includes('Spare bike'), 'Bob sees the offer on the board');
  await post(bob, 'request', 'Need a bike for work', 'Transport');
  await bob.waitForSelector('#match-list');
  check((await bob.textContent('#match-list')).includes('Spare bike'), 'the request\'s page suggests the offer');

  // The offer's page, open all along, now suggests the request.
  await fay.waitForFunction(() => document.querySelector('#match-list')?.textContent.includes('Need a bike for work'));

  // Bob asks for the bike, with his contact sealed to Fay.
  await bob.click('#match-list a');
  await bob.waitForSelector('#pledge');
  await bob.fill('#pledge input[name=note]', 'Tomorrow morning?');
  await bob.fill('#pledge input[name=contact]', 'bob@example.org');
  await bob.click('#pledge button[type=submit]');
  await bob.waitForSelector('#pledges');
  check((await bob.$$('#pledges .contact')).length === 0, 'the pledger does not see a contact sealed to the author');
  await fay.waitForFunction(() => document.querySelector('#pledges .contact')?.textContent.includes('bob@example.org'));

  // The board's filters.
  await go(fay, args.url, '#/aid');
  await fay.selectOption('#filters select[name=kind]', 'request');
  await fay.waitForFunction(() => {
    const items = [...document.querySelectorAll('#board li')];
    return items.length === 1 && items[0].classList.contains('request');
  });
  await fay.selectOption('#filters select[name=kind]', '');
  await fay.fill('#filters input[name=category]', 'childcare');
  await fay.press('#filters input[name=category]', 'Enter');
  await fay.waitForSelector('text=Nothing on the board matches.');
  clean(fay, 'Fay\'s page');
  clean(bob, 'Bob\'s page');
});

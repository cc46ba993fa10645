// (a) A STAR ballot cast in the browser — one filled with the keyboard alone (Tab and the
// arrow keys) and re-cast, one by a second member signed in on the same node — and seen
// counted on the results page once the poll is closed in the browser.

import { main, open, go, check, clean } from './lib.mjs';

const args = JSON.parse(process.argv[2]);

async function focused(page) {
  return page.evaluate(() => {
    const e = document.activeElement;
    return { tag: e.tagName, name: e.name || '', id: e.id || '', value: e.value || '', text: e.textContent.slice(0, 40) };
  });
}

async function checkedScores(page) {
  return page.evaluate(() => [...document.querySelectorAll('#ballot input:checked')].map((i) => Number(i.value)));
}

async function tabTo(page, test, what) {
  for (let i = 0; i < 60; i += 1) {
    await page.keyboard.press('Tab');
    if (test(await focused(page))) {
      return;
    }
  }
  throw new Error(`Tab never reached ${what}`);
}

await main(async (browser) => {
  const fay = await open(browser);
  await go(fay, args.url, `#/polls/${args.poll}`);
  await fay.waitForSelector('#ballot');
  // Keyboard only, from the top of the page.
  await tabTo(fay, (f) => f.name === 'score-0', 'the first option');
  for (let i = 0; i < 5; i += 1) {
    await fay.keyboard.press('ArrowRight');
  }
  await fay.keyboard.press('Tab');
  check((await focused(fay)).name === 'score-1', 'Tab goes on to the second option');
  await fay.keyboard.press('ArrowRight');
  await fay.keyboard.press('ArrowRight');
  await fay.keyboard.press('Tab');
  check((await focused(fay)).name === 'score-2', 'then the third');
  await fay.keyboard.press('Tab');
  const button = await focused(fay);
  check(button.tag === 'BUTTON' && button.text.includes('Cast'), `then the cast button, not ${JSON.stringify(button)}`);
  check(JSON.stringify(await checkedScores(fay)) === '[5,2,0]', `scores by keyboard: ${await checkedScores(fay)}`);
  await fay.keyboard.press('Enter');
  await fay.waitForSelector('#confirmation:not([hidden])');
  const first = await fay.textContent('#confirmation');
  check(first.includes('Revision 1') && /Ballot id: [0-9a-f]{64}/.test(first), `confirmation: ${first}`);
  check((await focused(fay)).id === 'confirmation', 'the confirmation takes the focus (screen readers read it)');
  check((await fay.getAttribute('#confirmation', 'role')) === 'status', 'the confirmation is a status');
  // Re-cast, still by keyboard: Wed 0 → 1.
  await tabTo(fay, (f) => f.name === 'score-2', 'the third option again');
  await fay.keyboard.press('ArrowRight');
  await tabTo(fay, (f) => f.tag === 'BUTTON', 'the cast button again');
  await fay.keyboard.press('Enter');
  await fay.waitForFunction(() => document.querySelector('#confirmation').dataset.revision === '2');
  check((await fay.textContent('#confirmation')).includes('Mon 5, Tue 2, Wed 1'), 'the re-cast ballot is confirmed');

  // Bob signs in on the Keys page (a member voting in turn) and votes with the mouse.
  const bob = await open(browser);
  await go(bob, args.url, '#/start');
  await bob.selectOption('#sign-in select[name=member]', args.bob);
  await bob.click('#sign-in button[type=submit]');
  await bob.waitForFunction(() => document.querySelector('#acting')?.textContent.includes('Bob'));
  await go(bob, args.url, `#/polls/${args.poll}`);
  await bob.click('label[for=score-0-4]');
  await bob.click('label[for=score-1-5]');
  await bob.click('#ballot button[type=submit]');
  await bob.waitForSelector('#confirmation:not([hidden])');
  check((await bob.textContent('#confirmation')).includes('Mon 4, Tue 5, Wed 0'), 'Bob\'s ballot');

  // Fay closes the poll in the browser and sees the count.
  fay.on('dialog', (dialog) => dialog.accept());
  await fay.click('text=Close the poll');
  await fay.waitForSelector('#winner');
  await fay.waitForFunction(() => document.querySelector('#winner').textContent === 'Winner: Mon');
  const page = await fay.textContent('main');
  check(page.includes('2 of 2 voters'), 'two ballots counted of two voters');
  check(page.includes('Closed: these figures are final.'), 'closed');
  check((await fay.$$('#excluded tbody tr')).length === 1, 'Fay\'s first revision is excluded');
  check((await fay.textContent('#excluded')).includes('a later ballot by the same member counts'), 'and why');
  // Bob's page learns of the close without a reload.
  await bob.waitForSelector('text=This poll is closed');
  clean(fay, 'Fay\'s page');
  clean(bob, 'Bob\'s page');
});

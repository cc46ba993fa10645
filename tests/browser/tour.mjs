// The README's five-minute tour, done in the browser as a newcomer would: two fresh nodes (no
// keys, no hub), Fay's and Ann's pages side by side. Fay founds the hub; Ann's page shows her
// member id, Fay adds her to the roll and copies the ticket from her Peers page, Ann joins
// with it; Fay proposes in the Activism Society, the proposal and what Ann types show on the
// other page without a reload; a comment, an amendment and a stance; Fay puts it to a STAR
// vote, both cast; Fay closes the poll and both results pages show the same count. Prints
// `poll POLL_ID` for the CLI check that follows.

import { main, open, go, check, clean } from './lib.mjs';

const args = JSON.parse(process.argv[2]);
const LIMIT = { timeout: 30000 };
const TEXT = 'The branch opens the hall on Sundays from 10 to 4.';
const TYPED = ' Volunteers hold the keys.';

/** Clicks a link of the navigation and waits until its page is drawn. */
async function nav(page, label) {
  await page.click(`#nav-list a:text-is("${label}")`);
  await page.waitForSelector('main h1');
  await page.waitForLoadState('networkidle').catch(() => {});
}

/** Waits until `selector`'s text includes `text` (without a reload). */
async function shows(page, selector, text, what) {
  try {
    await page.waitForFunction(([s, t]) => {
      const e = document.querySelector(s);
      return Boolean(e && e.textContent.includes(t));
    }, [selector, text], LIMIT);
  } catch (error) {
    const now = await page.$eval(selector, (e) => e.textContent).catch(() => '(not on the page)');
    throw new Error(`${what}: ${selector} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(now)}\n${error.message}`);
  }
}

/** Scores a ballot with the mouse: `scores` maps each option's legend to 0–5. */
async function vote(page, scores) {
  const legends = await page.$$eval('#ballot fieldset legend', (ls) => ls.map((l) => l.textContent));
  check(JSON.stringify(legends.slice().sort()) === JSON.stringify(Object.keys(scores).sort()),
    `the ballot's options: ${JSON.stringify(legends)}`);
  for (const [i, option] of legends.entries()) {
    await page.click(`label[for=score-${i}-${scores[option]}]`);
  }
  await page.click('#ballot button[type=submit]');
  await page.waitForSelector('#confirmation:not([hidden])');
  const said = await page.textContent('#confirmation');
  check(said.includes('Revision 1'), `the confirmation: ${said}`);
}

await main(async (browser) => {
  const fay = await open(browser);
  const ann = await open(browser);
  // Each opens the link their node printed: no key made by hand, no hub yet.
  await go(fay, args.fay, '#/');
  await go(ann, args.ann, '#/');
  check((await fay.textContent('main h1')) === 'Welcome to Moot', 'Fay\'s first page welcomes her');

  // 1. Fay founds the hub.
  await fay.fill('input[name=name]', 'Riverside Branch');
  await fay.fill('input[name=founder]', 'Fay');
  await fay.click('button:text-is("Found the hub")');
  await shows(fay, 'main h1', 'Riverside Branch: dashboard', 'Fay\'s page after founding');
  await shows(fay, '#hub-name', 'Riverside Branch', 'the hub\'s name at the top of Fay\'s page');
  await shows(fay, '#who', 'Acting as Fay', 'Fay\'s page names her as the roll does');

  // 2. Ann's page shows her member id; Fay adds her to the roll.
  check((await ann.textContent('main h1')) === 'Welcome to Moot', 'Ann\'s first page welcomes her');
  const annId = (await ann.textContent('#my-member-id')).trim();
  check(/^[0-9a-f]{64}$/.test(annId), `Ann's member id: ${annId}`);
  await nav(fay, 'Members');
  await fay.fill('#add-member input[name=member_id]', annId);
  await fay.fill('#add-member input[name=name]', 'Ann');
  await fay.click('#add-member button[type=submit]');
  await shows(fay, '#roll', 'Ann', 'the roll on Fay\'s page');
  await shows(fay, '#add-member', 'Ann is on the roll.', 'Fay\'s confirmation');

  // Fay copies the ticket from her Peers page; Ann pastes it under "Join a hub".
  await nav(fay, 'Peers');
  await fay.waitForSelector('#ticket', LIMIT);
  const ticket = await fay.$eval('#ticket', (t) => t.value);
  check(ticket.startsWith('moot1'), `the ticket: ${ticket}`);
  await fay.click('#copy-ticket');
  await ann.fill('textarea[name=ticket]', ticket);
  await ann.click('button:text-is("Join")');
  await shows(ann, 'main h1', 'Riverside Branch: dashboard', 'Ann\'s page after joining');
  await shows(ann, '#who', 'Acting as Ann', 'Ann\'s page names her as Fay put her on the roll');
  // Both pages say they are connected (the dashboard and the Peers page, without a reload).
  await shows(ann, '#sync-status', 'Connected to 1 peer', 'Ann\'s sync status');
  await shows(fay, '#peer-count', 'Connected to 1 peer', 'Fay\'s Peers page');
  await shows(fay, '#peers', 'Ann', 'Fay\'s peers: Ann\'s node, by her name on the roll');

  // 3. Fay proposes in the Activism Society, from the assembly's page.
  await nav(fay, 'Assemblies');
  await fay.click('main a:text-is("Activism Society")');
  await shows(fay, 'main h1', 'Activism Society', 'the assembly page');
  await shows(fay, '#asm-members', 'Members (2)', 'everyone is in the Activism Society');
  await fay.fill('#new-proposal input[name=title]', 'Sunday opening');
  await fay.fill('#new-proposal textarea[name=body]', TEXT);
  await fay.click('#new-proposal button[type=submit]');
  await shows(fay, 'main h1', 'Sunday opening', 'Fay\'s proposal page');
  await fay.waitForLoadState('networkidle').catch(() => {});
  const proposal = new URL(fay.url()).hash.replace('#/proposals/', '');
  check(/^[0-9a-f]{64}$/.test(proposal), `the proposal's page: ${fay.url()}`);

  // It appears on Ann's dashboard without a reload; she opens it from there.
  await shows(ann, '#dash-proposals + *', 'Sunday opening', 'Ann\'s dashboard');
  await ann.click('main a:text-is("Sunday opening")');
  await shows(ann, 'main h1', 'Sunday opening', 'Ann\'s proposal page');
  check(await ann.$eval('textarea.editor', (t) => t.value) === TEXT, 'Ann sees Fay\'s text');
  await shows(ann, 'main .facts', 'Proposed byFay', 'the proposer on Ann\'s page');
  // Only the proposer or a convener decides: Ann's page says so instead of offering it.
  await shows(ann, '#outcome-h + *', 'Fay (the proposer) or a convener decides.', 'Ann\'s outcome section');
  check(await ann.$('#decide') === null, 'Ann is offered no decision she may not make');

  // Ann types at the end of the text; Fay's page shows it as it is typed.
  await ann.click('textarea.editor');
  await ann.keyboard.press('Control+End');
  await ann.keyboard.type(TYPED, { delay: 15 });
  await fay.waitForFunction((t) => document.querySelector('textarea.editor').value === t, TEXT + TYPED, LIMIT);
  await ann.waitForSelector('text=All changes saved.');

  // Ann comments and proposes an amendment; Fay takes a stance: each shows on the other page.
  await ann.fill('#comments + form textarea[name=text]', 'Who locks up at 4?');
  await ann.click('#comments + form button[type=submit]');
  await shows(fay, '#comments', 'Who locks up at 4?', 'Ann\'s comment on Fay\'s page');
  await ann.fill('#amend input[name=replace]', 'from 10 to 4');
  await ann.fill('#amend input[name=with]', 'from 12 to 5');
  await ann.click('#amend button[type=submit]');
  await shows(fay, 'main', 'Amendment 1 by Ann', 'Ann\'s amendment on Fay\'s page');
  await fay.waitForSelector('button:text-is("Accept amendment 1")');
  check(await ann.$('button:text-is("Accept amendment 1")') === null, 'only Fay may accept it');
  await fay.check('#stance input[value=agree]');
  await fay.fill('#stance input[name=reason]', 'Members asked for it');
  await fay.click('#stance button[type=submit]');
  await shows(ann, '#stance-h + *', 'agree — Members asked for it', 'Fay\'s stance on Ann\'s page');

  // 4. Fay puts it to a STAR vote; the poll opens with adopt, the amendment and reject.
  await fay.selectOption('#decide select[name=outcome]', 'vote');
  await fay.click('#decide button[type=submit]');
  await fay.click('a:text-is("Go to the poll")', LIMIT);
  await fay.waitForSelector('#ballot', LIMIT);
  const poll = new URL(fay.url()).hash.replace('#/polls/', '');
  check(/^[0-9a-f]{64}$/.test(poll), `the poll's page: ${fay.url()}`);
  // Ann's proposal page shows the decision without a reload, with the way to the poll.
  await ann.click('a:text-is("Go to the poll")', LIMIT);
  await ann.waitForSelector('#ballot', LIMIT);
  const options = await fay.$$eval('#ballot fieldset legend', (ls) => ls.map((l) => l.textContent));
  check(options.length === 3, `adopt, the amendment and reject: ${JSON.stringify(options)}`);
  const [adopt, amended, reject] = options;
  await vote(fay, { [adopt]: 3, [amended]: 5, [reject]: 0 });
  await vote(ann, { [adopt]: 4, [amended]: 4, [reject]: 1 });

  // 5. Fay waits until Ann's ballot reached her node (her poll page counts the ballots) and
  // closes the poll.
  await fay.waitForFunction(() => [...document.querySelectorAll('dt')]
    .find((dt) => dt.textContent === 'Ballots received on this node')
    ?.nextElementSibling.textContent === '2 of 2 voters', null, LIMIT);
  fay.on('dialog', (dialog) => dialog.accept());
  await fay.click('button:text-is("Close the poll")');
  await shows(fay, '#winner', 'Winner: ', 'Fay\'s results');
  await shows(fay, '.headline', 'Closed: these figures are final.', 'Fay\'s results');
  // Ann's ballot page learns of the close; she opens the results from it.
  await shows(ann, 'main', 'This poll is closed', 'Ann\'s poll page');
  await ann.click('a:text-is("See the result")');
  await shows(ann, '.headline', 'Closed: these figures are final.', 'Ann\'s results');

  const fayResults = await fay.textContent('.results');
  const annResults = await ann.textContent('.results');
  check(fayResults.includes('2 of 2 voters'), `both ballots counted: ${fayResults.slice(0, 400)}`);
  check(fayResults === annResults, `the same results on both pages:\n${fayResults}\n---\n${annResults}`);
  const winner = await fay.textContent('#winner');
  check(winner === `Winner: ${amended}`, `the amendment wins (9 stars to 7, preferred 1 to 0 in the runoff): ${winner}`);
  // The same figures from both nodes' API.
  const results = async (id) => {
    const owner = window.localStorage.getItem('moot-owner');
    return (await fetch(`/api/polls/${id}/results`, { headers: owner ? { 'X-Moot-Owner': owner } : {} })).text();
  };
  const fayJson = await fay.evaluate(results, poll);
  const annJson = await ann.evaluate(results, poll);
  check(fayJson === annJson, `the same results JSON on both nodes:\n${fayJson}\n---\n${annJson}`);
  // Fay's dashboard tells who did what, newest first: her close, Ann's ballot among it.
  await go(fay, args.fay, '#/');
  await fay.waitForSelector('#activity');
  const activity = await fay.textContent('#activity');
  check(activity.startsWith('Fay closed a poll') && activity.includes('Ann cast a ballot'),
    `recent activity: ${activity}`);
  clean(fay, 'Fay\'s page');
  clean(ann, 'Ann\'s page');
  console.log(`poll ${poll}`);
});

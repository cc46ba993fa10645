// (d) A guest (a key on the roll with the guest role, signed in on a loopback node) sees
// public spaces only: no members-only page, no members-only API route, no writes — while a
// session that has not signed in, opened with the node's link on loopback, acts as the node's
// own key and may; one opened without the link is a visitor.

import { main, open, go, check, clean } from './lib.mjs';

const args = JSON.parse(process.argv[2]);

async function status(page, method, path) {
  return page.evaluate(async ([m, p]) => {
    // As the page's own requests do: the owner secret, if this page keeps one.
    const owner = window.localStorage.getItem('moot-owner');
    const mine = owner ? { 'X-Moot-Owner': owner } : {};
    const session = await (await fetch('/api/session', { headers: mine })).json();
    const init = { method: m, headers: { 'X-Moot-Csrf': session.csrf, 'Content-Type': 'application/json', ...mine } };
    if (m !== 'GET') {
      init.body = JSON.stringify({ name: 'Guests club', kind: 'working-group' });
    }
    return (await fetch(p, init)).status;
  }, [method, path]);
}

await main(async (browser) => {
  // The node's own user, for contrast: the roll is there.
  const owner = await open(browser);
  await go(owner, args.url, '#/members');
  await owner.waitForSelector('#roll');
  check(await status(owner, 'GET', '/api/members') === 200, 'the owner reads the roll');

  const guest = await open(browser);
  await go(guest, args.url, '#/start');
  await guest.selectOption('#sign-in select[name=member]', args.guest);
  await guest.click('#sign-in button[type=submit]');
  await guest.waitForFunction(() => document.querySelector('#acting')?.textContent.includes('guest'));
  check(await guest.$('a[data-nav=members]') === null, 'no Members link for a guest');
  check(await guest.$('a[data-nav=peers]') === null, 'no Peers link for a guest');

  // Members-only pages show a refusal and nothing of the roll.
  for (const hash of ['#/members', '#/merges', '#/peers']) {
    await go(guest, args.url, hash);
    await guest.waitForSelector('main [role=alert]');
    check((await guest.textContent('main')).includes('Members only'), `${hash} refuses a guest`);
  }
  check(await guest.$('#roll') === null, 'the roll is not shown');
  await go(guest, args.url, `#/assemblies/${args.secret}`);
  await guest.waitForSelector('main [role=alert]');
  check(!(await guest.textContent('main')).includes('Strike fund'), 'a members-only assembly stays hidden');

  // The public working group is there, the members-only committee is not.
  await go(guest, args.url, '#/assemblies');
  await guest.waitForSelector('table');
  const list = await guest.textContent('main');
  check(list.includes('Housing') && !list.includes('Strike fund'), `assemblies a guest sees: ${list}`);
  check(await guest.$('#new-assembly') === null, 'no create form for a guest');

  // The API says no as well.
  for (const path of ['/api/members', '/api/merges', '/api/peers', '/api/keys', '/api/hub/ticket', '/api/id']) {
    const code = await status(guest, 'GET', path);
    check(code === 401, `GET ${path} answers a guest ${code}`);
  }
  const write = await status(guest, 'POST', '/api/assemblies');
  check(write === 401, `a guest's write answers ${write}`);
  // Another user of the machine, who opens the address without the node's link (its web
  // token): a visitor, told how the owner gets in, and refused writes.
  const bare = new URL(args.url);
  bare.search = '';
  const stranger = await open(browser);
  await go(stranger, bare.toString(), '#/start');
  check((await stranger.textContent('main')).includes('opened without this node'), 'the stranger is told about the link');
  check((await stranger.textContent('#who')).includes('Visitor'), 'the stranger acts as no one');
  check(await status(stranger, 'GET', '/api/members') === 401, 'the stranger cannot read the roll');
  check(await status(stranger, 'POST', '/api/assemblies') === 401, 'the stranger cannot write');

  // Pages drawn for the guest made no request the guard refused on the way (the UI asks only
  // for what a guest may see, apart from the refusals checked above).
  guest.problems = guest.problems.filter((p) => !p.includes('401'));
  clean(guest, 'the guest\'s page');
  clean(owner, 'the owner\'s page');
});

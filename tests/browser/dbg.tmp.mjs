import { main, open, go, audit, PHONE, DESKTOP } from './lib.mjs';
const [url] = process.argv.slice(2);
await main(async (browser) => {
  const q = await open(browser, PHONE);
  await go(q, url, '#/');
  await audit(q);
  const p = await open(browser, DESKTOP);
  p.on('response', (r) => console.log(r.status(), r.request().method(), r.url()));
  p.on('console', (m) => console.log('console', m.text()));
  await go(p, url, '#/');
  await audit(p);
  const form = p.locator('form', { hasText: 'Found a hub' });
  await form.locator('input[name=name]').fill('Hall X');
  await form.locator('button[type=submit]').click();
  await p.waitForTimeout(4000);
  console.log(await p.textContent('main'));
});

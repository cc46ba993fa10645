// The mutual-aid board: offers and requests with filters, posting one, and one item with its
// match suggestions, pledges (contacts shown only when the node opens them for the key
// acting), fulfilling, and passing a gift forward.

import * as api from '../api.js';
import { h, field, onSubmit, select, badge, actionButton, facts, when, put, getOrShow } from '../dom.js';

const STATUSES = [['', 'Any status'], ['open', 'Open'], ['pledged', 'Pledged'], ['fulfilled', 'Fulfilled'],
  ['withdrawn', 'Withdrawn'], ['expired', 'Expired']];

function itemCard(item, ctx) {
  return h('li', { class: `item ${item.kind}` },
    h('p', { class: 'kind' }, badge(item.kind === 'offer' ? 'Offer' : 'Request', item.kind), ' ', badge(item.status, item.status)),
    h('h3', null, h('a', { href: `#/aid/${item.item_id}` }, item.title)),
    h('p', { class: 'meta' }, [item.category, item.area, item.quantity ? `×${item.quantity}` : null,
      item.until ? `until ${when(item.until)}` : null].filter(Boolean).join(' · ')),
    h('p', { class: 'meta' }, `by ${ctx.name(item.author)}`, item.public ? ' · public' : ''));
}

function postForm(ctx) {
  const form = h('form', { class: 'card', id: 'post-item' },
    h('h2', null, 'Post an offer or a request'),
    h('fieldset', null, h('legend', null, 'Kind'),
      h('div', { class: 'check' }, h('input', { type: 'radio', name: 'kind', value: 'offer', id: 'kind-offer', checked: true }),
        h('label', { for: 'kind-offer' }, 'I offer')),
      h('div', { class: 'check' }, h('input', { type: 'radio', name: 'kind', value: 'request', id: 'kind-request' }),
        h('label', { for: 'kind-request' }, 'I need'))),
    field('Title', h('input', { name: 'title', required: true })),
    field('Category', h('input', { name: 'category', required: true, list: 'categories' }), 'e.g. food, transport, childcare'),
    h('datalist', { id: 'categories' }, ['food', 'transport', 'childcare', 'tools', 'housing', 'lifts'].map((c) => h('option', { value: c }))),
    field('Description', h('textarea', { name: 'description', rows: 3 })),
    field('Area', h('input', { name: 'area' }), 'a neighbourhood or postcode district'),
    h('div', { class: 'row' },
      field('From (optional)', h('input', { name: 'from', type: 'date' })),
      field('Until (optional)', h('input', { name: 'until', type: 'date' })),
      field('Quantity', h('input', { name: 'quantity', type: 'number', min: 1, inputmode: 'numeric' }))),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', name: 'public', id: 'item-public' }),
      h('label', { for: 'item-public' }, 'Public (guests and visitors may see it)')),
    h('button', { type: 'submit' }, 'Post'));
  return onSubmit(form, async (data) => {
    const body = {
      title: data.get('title'), category: data.get('category'), description: data.get('description'),
      area: data.get('area'), from: data.get('from'), until: data.get('until'),
      public: data.get('public') === 'on',
    };
    if (data.get('quantity')) {
      body.quantity = Number(data.get('quantity'));
    }
    const kind = data.get('kind');
    const made = await api.post(kind === 'offer' ? '/aid/offers' : '/aid/requests', body);
    ctx.go(`#/aid/${made.item_id}`);
  });
}

export async function renderBoard(main, _params, ctx) {
  main.append(h('h1', null, 'Mutual aid'));
  const filters = h('form', { class: 'filters', id: 'filters', role: 'search', 'aria-label': 'Filter the board' },
    field('Kind', select('kind', [['', 'Offers and requests'], ['offer', 'Offers'], ['request', 'Requests']])),
    field('Category', h('input', { name: 'category', type: 'search' })),
    field('Area', h('input', { name: 'area', type: 'search' })),
    field('Status', select('status', STATUSES, 'open')),
    h('button', { type: 'submit' }, 'Filter'));
  const list = h('div', { 'aria-live': 'polite' });
  main.append(filters, list);
  async function fill() {
    const query = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) {
      if (v) {
        query.set(k, v);
      }
    }
    const found = await getOrShow(list, `/aid?${query}`);
    if (!found) return;
    const { items } = found;
    put(list, items.length
      ? h('ul', { class: 'board', id: 'board' }, items.map((i) => itemCard(i, ctx)))
      : h('p', null, 'Nothing on the board matches.'));
  }
  filters.addEventListener('submit', (event) => { event.preventDefault(); fill(); });
  filters.addEventListener('change', () => fill());
  await fill();
  if (ctx.session.may_write) {
    main.append(postForm(ctx));
  }
  return { refresh: fill };
}

function pledgeForm(item, after) {
  const form = h('form', { class: 'stack', id: 'pledge' },
    h('h3', null, item.kind === 'offer' ? 'Ask for it' : 'Pledge to help'),
    field('Note', h('input', { name: 'note' })),
    field('Your contact (sealed: only the item\'s author can read it)', h('input', { name: 'contact' })),
    field('Quantity', h('input', { name: 'quantity', type: 'number', min: 1, inputmode: 'numeric' })),
    h('button', { type: 'submit' }, 'Pledge'));
  return onSubmit(form, async (data) => {
    const body = { note: data.get('note'), contact: data.get('contact') };
    if (data.get('quantity')) {
      body.quantity = Number(data.get('quantity'));
    }
    await api.post(`/aid/${item.item_id}/pledge`, body);
    form.reset();
    await after();
    return 'Pledged.';
  });
}

function forwardForm(item, ctx) {
  const form = h('form', { class: 'stack', id: 'forward' },
    h('h3', null, 'Pass it forward'),
    h('p', { class: 'hint' }, 'Received this gift? Offer it on to someone else: the chain shows on both items.'),
    field('Title', h('input', { name: 'title', required: true, value: item.title })),
    field('Category', h('input', { name: 'category', required: true, value: item.category })),
    field('Area', h('input', { name: 'area', value: item.area || '' })),
    h('button', { type: 'submit' }, 'Offer it on'));
  return onSubmit(form, async (data) => {
    const made = await api.post(`/aid/${item.item_id}/forward`, {
      title: data.get('title'), category: data.get('category'), area: data.get('area'), public: item.public,
    });
    ctx.go(`#/aid/${made.item_id}`);
  });
}

export async function renderItem(main, [id], ctx) {
  const heading = h('h1', null, 'Aid item');
  const body = h('div');
  const matches = h('section', { class: 'card', 'aria-labelledby': 'matches-h', id: 'matches' });
  const forms = h('div', { class: 'grid' });
  main.append(heading, body, matches, forms);
  let formsFor = null;
  async function fill() {
    const item = await getOrShow(body, `/aid/${id}`);
    if (!item) return;
    heading.textContent = `${item.kind === 'offer' ? 'Offer' : 'Request'}: ${item.title}`;
    document.title = `${heading.textContent} · Moot`;
    const me = ctx.me && ctx.me.member_id;
    const mine = me === item.author;
    const writable = ctx.session.may_write;
    put(body, 
      h('p', null, badge(item.kind, item.kind), ' ', badge(item.status, item.status)),
      item.description ? h('p', { class: 'lead' }, item.description) : null,
      facts([
        ['Posted by', ctx.name(item.author)],
        ['Category', item.category], ['Area', item.area], ['Quantity', item.quantity ? String(item.quantity) : ''],
        ['From', when(item.from)], ['Until', when(item.until)],
        ['Who sees it', item.public ? 'public' : 'members only'],
        ['Passed on from', item.forwarded_from ? h('a', { href: `#/aid/${item.forwarded_from}` }, 'an earlier gift') : ''],
        ['Passed on as', item.forwarded_to.length ? item.forwarded_to.map((f, i) => h('a', { href: `#/aid/${f}` }, `offer ${i + 1} `)) : ''],
      ]),
      h('section', { class: 'card', 'aria-labelledby': 'pledges-h' }, h('h2', { id: 'pledges-h' }, 'Pledges'),
        item.pledges.length ? h('ul', { class: 'list', id: 'pledges' }, item.pledges.map((p) => h('li', null,
          h('strong', null, ctx.name(p.pledger)), p.quantity ? ` ×${p.quantity}` : '', p.note ? ` — ${p.note}` : '',
          p.withdrawn ? [' ', badge('withdrawn')] : null,
          p.pledger_contact ? h('p', { class: 'contact' }, `Their contact: ${p.pledger_contact}`) : null,
          p.author_contact ? h('p', { class: 'contact' }, `${ctx.name(item.author)}'s contact: ${p.author_contact}`) : null,
          writable && mine && !p.withdrawn ? replyForm(p, fill) : null,
          writable && mine && !p.withdrawn && item.status !== 'fulfilled' ? actionButton(`Mark fulfilled by ${ctx.name(p.pledger)}`, async () => {
            await api.post(`/aid/${id}/fulfil`, { pledge: p.pledge_id });
            await fill();
          }) : null,
          writable && me === p.pledger && !p.withdrawn ? actionButton('Withdraw my pledge', async () => {
            await api.post(`/aid/${p.pledge_id}/withdraw`);
            await fill();
          }) : null)))
          : h('p', null, 'No pledge yet.')),
      writable && mine && ['open', 'pledged'].includes(item.status)
        ? h('div', { class: 'actions' },
          actionButton('Mark fulfilled', async () => { await api.post(`/aid/${id}/fulfil`); await fill(); }),
          actionButton('Withdraw it', async () => { await api.post(`/aid/${id}/withdraw`); await fill(); }),
          actionButton('Mark expired', async () => { await api.post(`/aid/${id}/expire`); await fill(); }))
        : null);
    // Suggestions: what could meet this item.
    let suggested = null;
    try {
      suggested = (await api.get(`/aid/${id}/matches`)).matches;
    } catch {
      suggested = null;
    }
    put(matches, h('h2', { id: 'matches-h' }, item.kind === 'offer' ? 'Requests this could meet' : 'Offers that could meet this'));
    if (suggested === null) {
      matches.append(h('p', null, 'Suggestions are for members.'));
    } else if (!suggested.length) {
      matches.append(h('p', null, 'No match yet: same category, open, not your own.'));
    } else {
      matches.append(h('ol', { class: 'list', id: 'match-list' }, suggested.map((m) => h('li', null,
        h('a', { href: `#/aid/${m.item.item_id}` }, m.item.title),
        ` — ${m.item.category}${m.item.area ? `, ${m.item.area}` : ''}, by ${ctx.name(m.item.author)} `,
        h('span', { class: 'hint' }, `(${m.reasons.map((r) => r.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()).join(', ')})`)))));
    }
    const key = `${item.status}|${mine}`;
    if (writable && formsFor !== key) {
      formsFor = key;
      put(forms, 
        !mine && ['open', 'pledged'].includes(item.status) ? h('div', { class: 'card' }, pledgeForm(item, fill)) : null,
        item.status === 'fulfilled' && !mine ? h('div', { class: 'card' }, forwardForm(item, ctx)) : null);
    }
  }
  await fill();
  return { refresh: fill };
}

function replyForm(pledge, after) {
  const form = h('form', { class: 'inline' },
    field('Your contact for them', h('input', { name: 'contact', required: true })),
    h('button', { type: 'submit' }, 'Send (sealed)'));
  return onSubmit(form, async (data) => {
    await api.post(`/aid/pledges/${pledge.pledge_id}/reply`, { contact: data.get('contact') });
    await after();
    return 'Sent.';
  });
}

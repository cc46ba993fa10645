// Assemblies: the list (join or leave, create one) and one assembly (its members, proposals
// and polls; a proposal or poll made there; seats and conveners).

import * as api from '../api.js';
import { h, field, onSubmit, select, badge, actionButton, refusal, when, scroller, put, getOrShow } from '../dom.js';

const JOINABLE = (a) => !a.automatic && a.kind !== 'committee';

function joinButton(a, ctx, after) {
  if (!JOINABLE(a) || !ctx.me || !ctx.session.may_write) {
    return null;
  }
  const inIt = a.members.includes(ctx.me.member_id);
  return actionButton(inIt ? `Leave ${a.name}` : `Join ${a.name}`, async () => {
    await api.post(`/assemblies/${encodeURIComponent(a.assembly_id)}/${inIt ? 'leave' : 'join'}`);
    await after();
  });
}

export async function renderList(main, _params, ctx) {
  main.append(h('h1', null, 'Assemblies'));
  const list = h('div');
  main.append(list);
  async function fill() {
    const found = await getOrShow(list, '/assemblies');
    if (!found) return;
    const { assemblies } = found;
    const table = h('table', { class: 'table' },
      h('caption', { class: 'visually-hidden' }, 'Assemblies of this hub'),
      h('thead', null, h('tr', null, ['Assembly', 'Kind', 'Members', 'Who sees it', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, assemblies.map((a) => h('tr', null,
        h('th', { scope: 'row' }, h('a', { href: `#/assemblies/${encodeURIComponent(a.assembly_id)}` }, a.name)),
        h('td', null, a.kind),
        h('td', null, String(a.members.length),
          ctx.me && a.members.includes(ctx.me.member_id) ? [' ', badge('you', 'ok')] : null),
        h('td', null, a.public ? 'public' : 'members'),
        h('td', null, joinButton(a, ctx, fill))))));
    put(list, scroller('Assemblies', table));
  }
  await fill();
  if (ctx.session.may_write) {
    const form = h('form', { class: 'card', id: 'new-assembly' },
      h('h2', null, 'Create an assembly'),
      field('Name', h('input', { name: 'name', required: true })),
      field('Kind', select('kind', [['working-group', 'Working group'], ['committee', 'Committee'], ['society', 'Society']])),
      h('div', { class: 'check' }, h('input', { type: 'checkbox', name: 'public', id: 'asm-public' }),
        h('label', { for: 'asm-public' }, 'Public (guests may read it)')),
      h('button', { type: 'submit' }, 'Create'));
    onSubmit(form, async (data) => {
      const made = await api.post('/assemblies', {
        name: data.get('name'), kind: data.get('kind'), public: data.get('public') === 'on',
      });
      ctx.go(`#/assemblies/${made.assembly_id}`);
    });
    main.append(form);
  }
  return { refresh: fill };
}

function proposalForm(assembly, ctx) {
  const form = h('form', { class: 'card', id: 'new-proposal' },
    h('h2', null, 'New proposal'),
    field('Title', h('input', { name: 'title', required: true })),
    field('Text', h('textarea', { name: 'body', rows: 5 })),
    h('button', { type: 'submit' }, 'Propose'));
  return onSubmit(form, async (data) => {
    const made = await api.post('/proposals', {
      assembly: assembly.assembly_id, title: data.get('title'), body: data.get('body') || undefined,
    });
    ctx.go(`#/proposals/${made.proposal_id}`);
  });
}

function pollForm(assembly, ctx) {
  const form = h('form', { class: 'card', id: 'new-poll' },
    h('h2', null, 'New STAR poll'),
    h('p', { class: 'hint' }, 'For a convener of this assembly. The poll opens when a convener opens it; the closing time is advisory: only a returning officer\'s close counts.'),
    field('Question', h('input', { name: 'question', required: true })),
    field('Options, one per line', h('textarea', { name: 'options', rows: 4, required: true })),
    field('Seats', h('input', { name: 'seats', type: 'number', min: 1, value: '1', inputmode: 'numeric' })),
    field('Closes at (UTC, advisory)', h('input', { name: 'closes', type: 'datetime-local' })),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', name: 'open', id: 'poll-open', checked: true }),
      h('label', { for: 'poll-open' }, 'Open it now')),
    h('button', { type: 'submit' }, 'Create the poll'));
  return onSubmit(form, async (data) => {
    const options = data.get('options').split('\n').map((o) => o.trim()).filter(Boolean);
    const body = { assembly: assembly.assembly_id, question: data.get('question'), options };
    const seats = Number(data.get('seats'));
    if (seats > 1) {
      body.seats = seats;
    }
    if (data.get('closes')) {
      body.closes_at = `${data.get('closes')}Z`;
    }
    const made = await api.post('/polls', body);
    if (data.get('open') === 'on') {
      await api.post(`/polls/${made.poll_id}/open`);
    }
    ctx.go(`#/polls/${made.poll_id}`);
  });
}

function seatForm(assembly, ctx, after) {
  const candidates = ctx.roll.filter((m) => m.status === 'member');
  const form = h('form', { class: 'card' },
    h('h2', null, 'Seats and conveners'),
    field('Member', select('member', candidates.map((m) => [m.member_id, m.name]))),
    field('Action', select('action', [
      ...(assembly.kind === 'committee' ? [['seat', 'Seat'], ['unseat', 'Unseat']] : []),
      ['convener', 'Appoint convener'], ['dismiss', 'Dismiss convener']])),
    h('button', { type: 'submit' }, 'Apply'));
  return onSubmit(form, async (data) => {
    const action = data.get('action');
    const route = action === 'seat' || action === 'unseat' ? 'seat' : 'convener';
    await api.post(`/assemblies/${encodeURIComponent(assembly.assembly_id)}/${route}`, {
      member_id: data.get('member'), remove: action === 'unseat' || action === 'dismiss',
    });
    await after();
    return 'Done.';
  });
}

export async function renderOne(main, [id], ctx) {
  const heading = h('h1', null, 'Assembly');
  const body = h('div');
  main.append(heading, body);
  let formsShown = false;
  const forms = h('div', { class: 'grid' });
  async function fill() {
    const [all, polls, proposals] = await Promise.all([
      api.get('/assemblies'), api.get('/polls').catch(() => ({ polls: [] })),
      api.get('/proposals').catch(() => ({ proposals: [] }))]);
    const assembly = all.assemblies.find((a) => a.assembly_id === id);
    if (!assembly) {
      put(body, refusal({ message: 'No such assembly (or it is not public).' }));
      return;
    }
    heading.textContent = assembly.name;
    document.title = `${assembly.name} · Moot`;
    const mine = polls.polls.filter((p) => p.assembly_id === id);
    const props = proposals.proposals.filter((p) => p.assembly_id === id);
    put(body, 
      h('p', { class: 'lead' }, `${assembly.kind}${assembly.automatic ? ' (automatic: follows the roll)' : ''}, `,
        assembly.public ? 'public' : 'members only', ' ', joinButton(assembly, ctx, fill)),
      h('div', { class: 'grid' },
        h('section', { class: 'card', 'aria-labelledby': 'asm-members' },
          h('h2', { id: 'asm-members' }, `Members (${assembly.members.length})`),
          h('ul', { class: 'list' }, assembly.members.map((m) => h('li', null, ctx.name(m),
            assembly.conveners.includes(m) ? [' ', badge('convener')] : null))),
          assembly.conveners.length ? h('p', { class: 'hint' }, 'Conveners: ', assembly.conveners.map((m) => ctx.name(m)).join(', ')) : null),
        h('section', { class: 'card', 'aria-labelledby': 'asm-proposals' },
          h('h2', { id: 'asm-proposals' }, 'Proposals'),
          props.length ? h('ul', { class: 'list' }, props.map((p) => h('li', null,
            h('a', { href: `#/proposals/${p.proposal_id}` }, p.title), ' ', badge(p.status))))
            : h('p', null, 'None yet.')),
        h('section', { class: 'card', 'aria-labelledby': 'asm-polls' },
          h('h2', { id: 'asm-polls' }, 'Polls'),
          mine.length ? h('ul', { class: 'list' }, mine.map((p) => h('li', null,
            h('a', { href: `#/polls/${p.poll_id}` }, p.question), ' ', badge(p.stage, p.stage),
            p.closes_at ? ` closes ${when(p.closes_at)} (advisory)` : '',
            ' ', h('a', { href: `#/polls/${p.poll_id}/results`, class: 'minor' }, 'results'))))
            : h('p', null, 'None yet.'))));
    if (!formsShown && ctx.session.may_write) {
      formsShown = true;
      forms.append(proposalForm(assembly, ctx), pollForm(assembly, ctx));
      if (!assembly.automatic && ctx.roll.length) {
        forms.append(seatForm(assembly, ctx, fill));
      }
      main.append(forms);
    }
  }
  await fill();
  return { refresh: fill };
}


// First run and keys: make this node's key, found or join a hub, choose which key acts
// (members voting in turn on the branch laptop), make or protect a key.

import * as api from '../api.js';
import { h, field, onSubmit, facts, message, short, actionButton } from '../dom.js';

function initForm(ctx) {
  const form = h('form', { class: 'card' },
    h('h2', null, 'Create your key'),
    h('p', null, 'This node has no member key yet. Your key signs everything you do in Moot.'),
    field('Your name', h('input', { name: 'name', required: true, autocomplete: 'name' })),
    field('Passphrase (optional)', h('input', { name: 'passphrase', type: 'password', autocomplete: 'new-password' }),
      'Needed to sign in from another machine on the hall\'s Wi-Fi. You can add one later.'),
    h('button', { type: 'submit' }, 'Create my key'));
  return onSubmit(form, async (data) => {
    const body = { name: data.get('name') };
    if (data.get('passphrase')) {
      body.passphrase = data.get('passphrase');
    }
    const made = await api.post('/init', body);
    await ctx.reload();
    ctx.go('#/start');
    return `Key made: ${short(made.member_id)}`;
  });
}

function hubForms(ctx) {
  const found = h('form', { class: 'card' },
    h('h2', null, 'Found a hub'),
    h('p', null, 'Start a new hub for your organisation: you become its first steward.'),
    field('Hub name', h('input', { name: 'name', required: true })),
    field('Your name', h('input', {
      name: 'founder', required: true, autocomplete: 'name', value: ctx.me ? ctx.me.name : '',
    }), 'As the roll and everyone else\'s pages will show you.'),
    h('button', { type: 'submit' }, 'Found the hub'));
  onSubmit(found, async (data) => {
    await api.post('/hubs', { name: data.get('name') });
    // The founder is on the roll under the key's name (the node's key is named after the
    // system user): the name given here replaces it.
    const founder = data.get('founder').trim();
    if (ctx.me && founder && founder !== ctx.me.name) {
      await api.patch(`/members/${ctx.me.member_id}`, { name: founder });
    }
    await ctx.reload();
    ctx.go('#/');
    return 'Hub founded.';
  });
  const join = h('form', { class: 'card' },
    h('h2', null, 'Join a hub'),
    h('p', null, 'First give a steward of the hub your member id (below) to be added to the roll. Then paste the ticket a node of the hub shows on its Peers page (it starts with moot1).'),
    field('Ticket', h('textarea', { name: 'ticket', required: true, rows: 3, spellcheck: 'false' })),
    h('button', { type: 'submit' }, 'Join'));
  onSubmit(join, async (data) => {
    const joined = await api.post('/hubs/join', { ticket: data.get('ticket').trim() });
    await ctx.reload();
    ctx.go('#/');
    return `Joined ${joined.name || short(joined.hub_id)}.`;
  });
  return h('div', { class: 'grid' }, found, join);
}

async function whoActs(ctx) {
  const section = h('section', { class: 'card', 'aria-labelledby': 'who-acts' },
    h('h2', { id: 'who-acts' }, 'Who acts'));
  const s = ctx.session;
  const current = s.signed_in
    ? `${s.signed_in.name || short(s.signed_in.member_id)}${s.signed_in.guest ? ' (a guest: public spaces only)' : ''}`
    : (s.public_only ? 'nobody: a visitor sees public spaces only' : `${ctx.me ? ctx.me.name : '—'}, this node's own key`);
  section.append(h('p', { id: 'acting' }, `Acting as ${current}.`));
  const id = s.signed_in ? s.signed_in.member_id : (ctx.me && ctx.me.member_id);
  if (id) {
    section.append(h('p', null, 'Member id (give it to a steward to be admitted): ',
      h('code', { class: 'id', id: 'my-member-id' }, id)));
  }
  if (s.signed_in) {
    section.append(actionButton(s.exposure === 'local' ? 'Act as this node\'s key again' : 'Sign out', async () => {
      await api.signOut();
      await ctx.reload();
      ctx.go('#/start');
    }));
  }
  let keys = null;
  try {
    keys = (await api.get('/keys')).keys;
  } catch {
    keys = null;
  }
  const form = h('form', { class: 'stack', id: 'sign-in' },
    h('h3', null, 'Sign in as another key held here'),
    h('p', { class: 'hint' }, 'Members voting in turn on this machine: each signs in with their own key, and its passphrase if it has one.'));
  if (keys && keys.length) {
    form.append(field('Key', h('select', { name: 'member' },
      keys.map((k) => h('option', { value: k.member_id },
        `${k.name}${k.node ? ' (this node\'s key)' : ''}${k.protected ? ' — has a passphrase' : ''}`)))));
  } else {
    form.append(field('Member id or key name', h('input', { name: 'member', required: true })));
  }
  form.append(field('Passphrase', h('input', { name: 'passphrase', type: 'password', autocomplete: 'current-password' }),
    'Leave empty for a key stored without one.'),
  h('button', { type: 'submit' }, 'Sign in'));
  onSubmit(form, async (data) => {
    const session = await api.signIn(data.get('member'), data.get('passphrase'));
    await ctx.reload();
    ctx.go('#/start');
    return `Signed in as ${session.signed_in.name}.`;
  });
  section.append(form);
  return section;
}

function keyForms(ctx) {
  const make = h('form', { class: 'card' },
    h('h2', null, 'Add a member key to this node'),
    h('p', null, 'For a member who votes on this machine. A steward then adds the new member id to the roll (Members page).'),
    field('Name', h('input', { name: 'name', required: true })),
    field('Passphrase (optional)', h('input', { name: 'passphrase', type: 'password', autocomplete: 'new-password' })),
    h('button', { type: 'submit' }, 'Make the key'));
  onSubmit(make, async (data) => {
    const body = { name: data.get('name') };
    if (data.get('passphrase')) {
      body.passphrase = data.get('passphrase');
    }
    const made = await api.post('/keys', body);
    return h('p', { class: 'message ok', role: 'status' }, 'Key made. Its member id: ',
      h('code', { class: 'id' }, made.member_id));
  });
  const protect = h('form', { class: 'card' },
    h('h2', null, 'Protect the acting key'),
    h('p', null, 'Seal the key acting now with a passphrase (needed to sign in from another machine).'),
    field('New passphrase', h('input', { name: 'passphrase', type: 'password', required: true, autocomplete: 'new-password' })),
    h('button', { type: 'submit' }, 'Protect'));
  onSubmit(protect, async (data) => {
    await api.post('/key/protect', { passphrase: data.get('passphrase') });
    return 'The key now has a passphrase.';
  });
  return h('div', { class: 'grid' }, make, protect);
}

export async function render(main, _params, ctx) {
  main.append(h('h1', null, ctx.node && ctx.hub ? 'Keys and hub' : 'Welcome to Moot'));
  if (ctx.session.exposure === 'local' && !ctx.session.trusted && !ctx.session.signed_in) {
    main.append(message('info', 'This page was opened without this node\'s link, so it shows '
      + 'public spaces only. To act as the node\'s owner, open the link moot serve printed (it '
      + 'ends in ?token=…). A member whose key has a passphrase can sign in below.'));
  }
  if (!ctx.node) {
    main.append(initForm(ctx));
    return null;
  }
  if (!ctx.hub && !ctx.session.public_only) {
    main.append(h('p', { class: 'lead' },
      'This node has a key but no hub yet. Found one for your organisation, or join one with a ticket from another node.'),
    hubForms(ctx));
  }
  main.append(await whoActs(ctx));
  if (ctx.hub) {
    main.append(h('section', { class: 'card', 'aria-labelledby': 'hub-h' },
      h('h2', { id: 'hub-h' }, 'This hub'),
      facts([
        ['Name', ctx.hub.name],
        ['Hub id', h('code', { class: 'id' }, ctx.hub.hub_id)],
        ['Members', String(ctx.hub.members)],
        ['Stewards', String(ctx.hub.stewards)],
        ['Guests', String(ctx.hub.guests)],
        ['Who may receive it', ctx.hub.access],
      ])));
  }
  if (ctx.session.exposure === 'local' && !ctx.session.public_only) {
    main.append(keyForms(ctx));
  } else if (ctx.session.exposure !== 'local') {
    main.append(message('info', 'Keys are made on the node\'s own machine.'));
  }
  return null;
}

// The web UI: a single page, routed by the URL's hash (#/polls/ID…). Each page module renders
// into <main> and may return {refresh, leave}; when the node says something changed (the
// server-sent events of /api/events) the page shown fetches what it shows again.

import * as api from './api.js';
import { h, short, put } from './dom.js';
import * as dashboard from './pages/dashboard.js';
import * as start from './pages/start.js';
import * as assemblies from './pages/assemblies.js';
import * as members from './pages/members.js';
import * as proposal from './pages/proposal.js';
import * as ballot from './pages/ballot.js';
import * as results from './pages/results.js';
import * as aid from './pages/aid.js';
import * as peers from './pages/peers.js';
import * as merges from './pages/merges.js';

const ROUTES = [
  [/^\/?$/, dashboard.render, 'dashboard'],
  [/^\/start$/, start.render, 'start'],
  [/^\/assemblies$/, assemblies.renderList, 'assemblies'],
  [/^\/assemblies\/([^/]+)$/, assemblies.renderOne, 'assemblies'],
  [/^\/members$/, members.render, 'members'],
  [/^\/proposals\/([0-9a-f]+)$/, proposal.render, 'assemblies'],
  [/^\/polls\/([0-9a-f]+)$/, ballot.render, 'dashboard'],
  [/^\/polls\/([0-9a-f]+)\/results$/, results.render, 'dashboard'],
  [/^\/aid$/, aid.renderBoard, 'aid'],
  [/^\/aid\/([0-9a-f]+)$/, aid.renderItem, 'aid'],
  [/^\/peers$/, peers.render, 'peers'],
  [/^\/merges$/, merges.render, 'merges'],
];

const NAV = [
  ['dashboard', '#/', 'Dashboard', false],
  ['assemblies', '#/assemblies', 'Assemblies', false],
  ['members', '#/members', 'Members', true],
  ['aid', '#/aid', 'Mutual aid', false],
  ['peers', '#/peers', 'Peers', true],
  ['merges', '#/merges', 'Merges', true],
  ['start', '#/start', 'Keys and hub', false],
];

/** What every page may need: the session, who acts, names on the roll. */
export const ctx = {
  session: null,
  me: null,
  hub: null,
  node: true,
  names: new Map(),
  roll: [],
  name(id) {
    if (!id) {
      return '';
    }
    return this.names.get(id) || short(id);
  },
  isSteward() {
    const mine = this.roll.find((m) => this.me && m.member_id === this.me.member_id);
    return Boolean(mine && mine.roles.includes('steward'));
  },
  async reload() {
    await loadShared();
    paintChrome();
  },
  go(hash) {
    if (location.hash === hash) {
      show();
    } else {
      location.hash = hash;
    }
  },
};

let page = null;
let showing = 0;

/**
 * Loads the session, who acts, the hub and the roll, then sets them on `ctx` all at once: a
 * page drawing meanwhile (a live update can reload them at any time) sees the old values or
 * the new, never a half-loaded mix (no one acting, an empty roll).
 */
async function loadShared() {
  const session = await api.loadSession();
  let me = null;
  let node = true;
  let hub = null;
  const signed = session.signed_in;
  if (signed) {
    me = { member_id: signed.member_id, name: signed.name };
  } else if (!session.public_only) {
    try {
      me = await api.get('/id');
    } catch (error) {
      if (error.kind === 'not_found') {
        node = false;
      }
    }
  }
  try {
    hub = await api.get('/hub');
  } catch {
    hub = null;
  }
  const names = new Map();
  let roll = [];
  if (hub && !session.public_only) {
    try {
      roll = (await api.get('/members')).members;
      for (const m of roll) {
        names.set(m.member_id, m.name);
      }
      // Who acts goes by the name the roll gives them (a node's own key is named after the
      // system user until then).
      const mine = me && roll.find((m) => m.member_id === me.member_id);
      if (mine && mine.name) {
        me.name = mine.name;
      }
    } catch {
      // Not readable by this session: ids are shown.
    }
  }
  Object.assign(ctx, { session, me, node, hub, names, roll });
}

function paintChrome() {
  const hub = document.getElementById('hub-name');
  hub.textContent = ctx.hub ? ctx.hub.name : 'no hub yet';
  const who = document.getElementById('who');
  put(who);
  const s = ctx.session;
  let text;
  if (s.signed_in) {
    text = `Acting as ${s.signed_in.name || short(s.signed_in.member_id)}${s.signed_in.guest ? ' (guest)' : ''}`;
  } else if (s.public_only) {
    text = 'Visitor: public spaces only';
  } else if (ctx.me) {
    text = `Acting as ${ctx.me.name} (this node's key)`;
  } else {
    text = 'No key yet';
  }
  who.append(h('span', null, text), ' ', h('a', { href: '#/start' }, 'Change'));
  const nav = document.getElementById('nav-list');
  put(nav, ...NAV
    .filter(([, , , members]) => !members || !s.public_only)
    .map(([key, href, label]) => h('li', null, h('a', { href, 'data-nav': key }, label))));
}

function markNav(key) {
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === key) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
}

async function show() {
  let path;
  try {
    path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  } catch {
    // A damaged link (`#/%E0`): the "no page here" page, not a blank one.
    path = '/not-a-page';
  }
  const main = document.getElementById('main');
  const serial = ++showing;
  if (page && page.leave) {
    page.leave();
  }
  page = null;
  // Nothing to show before the node has keys and a hub: the first run.
  const needsStart = !ctx.node || !ctx.hub;
  let found = ROUTES.find(([re]) => re.test(path));
  if (needsStart && !(found && found[2] === 'start') && !ctx.session.public_only) {
    found = ROUTES.find(([, , key]) => key === 'start');
  }
  const container = h('div', { class: 'page' });
  put(main, container);
  if (!found) {
    container.append(h('h1', { tabindex: '-1' }, 'Not found'),
      h('p', null, 'No page here. ', h('a', { href: '#/' }, 'Go to the dashboard')));
    return;
  }
  const [re, render, key] = found;
  markNav(key);
  const params = path.match(re)?.slice(1) || [];
  try {
    const shown = await render(container, params, ctx);
    if (serial !== showing) {
      return;
    }
    page = shown || null;
  } catch (error) {
    put(container, h('h1', { tabindex: '-1' }, 'Something went wrong'),
      h('p', { class: 'message error', role: 'alert' },
        error.status === 401 ? 'Members only: sign in as a member to see this.' : error.message));
  }
  const heading = container.querySelector('h1');
  if (heading) {
    document.title = `${heading.textContent} · Moot`;
    if (moved) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: false });
    }
  }
  moved = true;
}

// Focus goes to a new page's heading when the reader navigates, not on first load.
let moved = false;

let pending = null;
let changedNode = false;

function changed(kind) {
  if (kind === 'node') {
    changedNode = true;
  }
  clearTimeout(pending);
  pending = setTimeout(async () => {
    if (changedNode) {
      changedNode = false;
      await loadShared().catch(() => {});
      paintChrome();
      if (!page || !page.refresh) {
        show();
        return;
      }
    }
    if (page && page.refresh) {
      page.refresh(kind).catch(() => {});
    }
  }, 150);
}

function listen() {
  const live = document.getElementById('live');
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { live.textContent = 'Live updates on'; });
  events.addEventListener('error', () => { live.textContent = 'Live updates: reconnecting…'; });
  events.addEventListener('change', (event) => {
    let kind = 'ops';
    try {
      kind = JSON.parse(event.data);
    } catch {
      // An unknown change: refresh all the same.
    }
    changed(kind);
  });
}

async function boot() {
  try {
    await loadShared();
  } catch (error) {
    put(document.getElementById('main'), 
      h('h1', null, 'Moot'), h('p', { class: 'message error', role: 'alert' },
        `The node does not answer: ${error.message}`));
    return;
  }
  paintChrome();
  window.addEventListener('hashchange', show);
  await show();
  listen();
  document.body.dataset.ready = 'true';
}

boot();

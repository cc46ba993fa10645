// Peers: who is connected and when they last sent something, this hub's ticket (to join from
// another node), sync with a peer's address, and bundles for sneakernet (export, import).

import * as api from '../api.js';
import { h, field, onSubmit, refusal, short, scroller, put, downloadButton } from '../dom.js';

function ago(secs) {
  if (secs === null || secs === undefined) {
    return 'nothing yet';
  }
  if (secs < 60) {
    return `${secs} s ago`;
  }
  if (secs < 3600) {
    return `${Math.round(secs / 60)} min ago`;
  }
  return `${Math.round(secs / 3600)} h ago`;
}

function ticketSection() {
  const box = h('section', { class: 'card', 'aria-labelledby': 'ticket-h' }, h('h2', { id: 'ticket-h' }, 'Hub ticket'));
  api.get('/hub/ticket').then(({ ticket }) => {
    const text = h('textarea', { id: 'ticket', readonly: true, rows: 3, spellcheck: 'false' });
    text.value = ticket;
    const said = h('span', { role: 'status', class: 'hint' });
    const copy = h('button', { type: 'button', id: 'copy-ticket' }, 'Copy the ticket');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(ticket);
        said.textContent = 'Copied.';
      } catch {
        text.select();
        said.textContent = 'Selected: press Ctrl+C to copy.';
      }
    });
    box.append(h('p', null, 'Another node joins this hub with this ticket (Keys and hub → Join a hub, or moot hub join).'),
      h('label', { for: 'ticket' }, 'Ticket'), text, h('p', null, copy, ' ', said));
  }).catch((error) => box.append(refusal(error)));
  return box;
}

function syncForm(after) {
  const form = h('form', { class: 'card', id: 'sync' },
    h('h2', null, 'Sync with a peer'),
    field('Peer address', h('input', { name: 'peer', required: true, spellcheck: 'false' }),
      'A multiaddress ending in /p2p/NODE_ID, as another node\'s Peers page lists it.'),
    h('button', { type: 'submit' }, 'Sync'));
  return onSubmit(form, async (data) => {
    const done = await api.post('/sync', { peers: [data.get('peer').trim()], timeout: 30 });
    await after();
    return `Synced: ${done.new_ops} new op${done.new_ops === 1 ? '' : 's'}${done.complete ? '' : ' (not complete yet)'}.`;
  });
}

function bundleSection(after) {
  const form = h('form', { class: 'stack', id: 'import' },
    field('Bundle file', h('input', { type: 'file', name: 'bundle', required: true })),
    h('button', { type: 'submit' }, 'Import'));
  onSubmit(form, async (data) => {
    const file = data.get('bundle');
    const bytes = await file.arrayBuffer();
    const done = await api.upload('/bundle', bytes);
    await after();
    return `Imported: ${done.new_ops} new op${done.new_ops === 1 ? '' : 's'} of ${done.ops}. See the merge report for what it brought.`;
  });
  return h('section', { class: 'card', 'aria-labelledby': 'bundle-h' },
    h('h2', { id: 'bundle-h' }, 'Bundles (no network needed)'),
    h('p', null, 'Carry the hub on a USB stick to a node that cannot connect, and bring its ops back.'),
    h('p', null, downloadButton('/bundle', 'hub.moot-bundle', 'Download a bundle of this hub', 'export'),
      ' · ', downloadButton('/bundle?lane=public', 'hub-public.moot-bundle', 'public lane only (for a guest)')),
    h('h3', null, 'Import a bundle'), form);
}

export async function render(main, _params) {
  main.append(h('h1', null, 'Peers'));
  const list = h('section', { class: 'card', 'aria-labelledby': 'peer-count' });
  main.append(list);
  async function fill() {
    let peers;
    try {
      peers = await api.get('/peers');
    } catch (error) {
      put(list, h('h2', { id: 'peer-count' }, 'Peers'), refusal(error.kind === 'not_found' || error.status === 500
        ? { message: `The node is not on the network: ${error.message}` } : error));
      return;
    }
    put(list, 
      h('h2', { id: 'peer-count' }, peers.peers.length
        ? `Connected to ${peers.peers.length} peer${peers.peers.length === 1 ? '' : 's'}.`
        : 'No peer connected.'),
      peers.peers.length ? scroller('Connected peers', h('table', { class: 'table', id: 'peers' },
        h('caption', { class: 'visually-hidden' }, 'Connected peers'),
        h('thead', null, h('tr', null, ['Member', 'Node', 'Receives', 'Connected', 'Ops received', 'Last ops'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, peers.peers.map((p) => h('tr', null,
          h('th', { scope: 'row' }, p.name || 'not on the roll'),
          h('td', null, h('code', { class: 'id', title: p.node_id }, short(p.node_id))),
          h('td', null, p.lanes),
          h('td', null, ago(p.connected_secs).replace(' ago', '')),
          h('td', null, String(p.ops_received)),
          h('td', null, ago(p.last_ops_secs_ago))))))) : null,
      h('h3', null, 'This node listens on'),
      h('ul', { class: 'list addrs' }, peers.listen.map((a) => h('li', null, h('code', null, a)))));
  }
  await fill();
  main.append(ticketSection(), h('div', { class: 'grid' }, syncForm(fill), bundleSection(fill)));
  return { refresh: fill };
}

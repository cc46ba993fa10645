// The dashboard: my assemblies, open polls with their advisory deadlines, proposals, the
// aid board's open items, recent activity and the sync status.

import * as api from '../api.js';
import { h, badge, when, refusal, put } from '../dom.js';

async function maybe(path) {
  try {
    return await api.get(path);
  } catch (error) {
    return { error };
  }
}

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), content);
}

/** What an op kind says someone did (`moot activity`'s kinds); technical kinds say nothing. */
const DID = {
  found: 'founded the hub', admit: 'admitted a member', remove: 'removed a member',
  grant: 'gave a role', revoke: 'took back a role', revoke_device: 'revoked a device',
  set_name: 'set a name on the roll', set_constituency: 'set a constituency',
  set_access: 'changed who may receive the hub', create_assembly: 'created an assembly',
  convener: 'changed a convener', join: 'joined or left an assembly', seat: 'changed a committee seat',
  create_poll: 'created a poll', open_poll: 'opened a poll', ballot: 'cast a ballot',
  close_station: 'closed a polling station', close_poll: 'closed a poll',
  create_proposal: 'made a proposal', doc_change: 'edited a proposal', comment: 'commented',
  stance: 'took a stance', amend: 'proposed an amendment', resolve_amendment: 'resolved an amendment',
  decide: 'decided a proposal', aid_item: 'posted on the aid board', aid_update: 'updated an aid item',
  aid_pledge: 'pledged', aid_unpledge: 'withdrew a pledge', aid_contact: 'answered a pledge',
};

/** Recent activity, newest first: consecutive ops of one kind by one member shown once. */
function activityList(list) {
  const rows = [];
  for (const a of list) {
    const did = DID[a.kind];
    if (!did) {
      continue;
    }
    const who = a.name || 'someone not on the roll';
    const last = rows[rows.length - 1];
    if (last && last.who === who && last.did === did) {
      last.count += 1;
    } else {
      rows.push({ who, did, count: 1 });
    }
  }
  return rows.length
    ? h('ol', { class: 'list', id: 'activity' }, rows.slice(0, 10).map((r) => h('li', null,
      h('strong', null, r.who), ` ${r.did}${r.count > 1 ? ` (${r.count} times)` : ''}`)))
    : h('p', null, 'Nothing yet.');
}

function pollItem(poll, assemblyName) {
  const links = [h('a', { href: `#/polls/${poll.poll_id}` }, poll.question)];
  const bits = [` — ${assemblyName}`];
  if (poll.closes_at) {
    bits.push(h('span', { class: 'deadline' }, ` · closes ${when(poll.closes_at)} (advisory)`));
  }
  return h('li', null, links, bits, ' ', badge(poll.stage, poll.stage),
    ' ', h('a', { href: `#/polls/${poll.poll_id}/results`, class: 'minor' }, 'results'));
}

export async function render(main, _params, ctx) {
  main.append(h('h1', null, ctx.hub ? `${ctx.hub.name}: dashboard` : 'Dashboard'));
  const body = h('div', { class: 'grid' });
  main.append(body);
  async function fill() {
    const [assemblies, polls, proposals, aid, peers, activity] = await Promise.all([
      maybe('/assemblies'), maybe('/polls'), maybe('/proposals'), maybe('/aid?status=open'),
      ctx.session.public_only ? { error: null } : maybe('/peers'),
      ctx.session.public_only ? { error: null } : maybe('/activity?limit=60'),
    ]);
    const names = new Map();
    for (const a of assemblies.assemblies || []) {
      names.set(a.assembly_id, a.name);
    }
    const me = ctx.me && ctx.me.member_id;
    const sections = [];

    const mine = (assemblies.assemblies || []).filter((a) => me && a.members.includes(me));
    sections.push(section('dash-assemblies', 'My assemblies',
      assemblies.error ? refusal(assemblies.error)
        : mine.length
          ? h('ul', { class: 'list' }, mine.map((a) => h('li', null,
            h('a', { href: `#/assemblies/${encodeURIComponent(a.assembly_id)}` }, a.name),
            ` (${a.kind}, ${a.members.length} members)`)))
          : h('p', null, 'You are in no assembly yet. ', h('a', { href: '#/assemblies' }, 'See the assemblies'))));

    const live = (polls.polls || []).filter((p) => p.stage !== 'closed');
    const closed = (polls.polls || []).filter((p) => p.stage === 'closed');
    sections.push(section('dash-polls', 'Open polls',
      polls.error ? refusal(polls.error)
        : live.length
          ? h('ul', { class: 'list' }, live.map((p) => pollItem(p, names.get(p.assembly_id) || p.assembly_id)))
          : h('p', null, 'No poll is open.'),
      closed.length ? [h('h3', null, 'Closed'),
        h('ul', { class: 'list' }, closed.map((p) => h('li', null,
          h('a', { href: `#/polls/${p.poll_id}/results` }, p.question), ` — ${names.get(p.assembly_id) || p.assembly_id}`)))] : null));

    const list = (proposals.proposals || []).slice(-8).reverse();
    sections.push(section('dash-proposals', 'Proposals',
      proposals.error ? refusal(proposals.error)
        : list.length
          ? h('ul', { class: 'list' }, list.map((p) => h('li', null,
            h('a', { href: `#/proposals/${p.proposal_id}` }, p.title),
            ` — ${names.get(p.assembly_id) || p.assembly_id} `, badge(p.status),
            p.objections ? badge(`${p.objections} objection${p.objections === 1 ? '' : 's'}`, 'warn') : null)))
          : h('p', null, 'No proposal yet.')));

    const items = aid.items || [];
    const offers = items.filter((i) => i.kind === 'offer').length;
    sections.push(section('dash-aid', 'Mutual aid',
      aid.error ? refusal(aid.error)
        : h('p', null, `${offers} open offer${offers === 1 ? '' : 's'}, ${items.length - offers} open request${items.length - offers === 1 ? '' : 's'}. `,
          h('a', { href: '#/aid' }, 'Go to the board'))));

    if (!ctx.session.public_only) {
      sections.push(section('dash-activity', 'Recent activity',
        activity.error ? refusal(activity.error) : activityList(activity.activity || []),
        h('p', { class: 'hint' }, 'In the order this node received it, newest first.')));
      const count = (peers.peers || []).length;
      sections.push(section('dash-sync', 'Sync',
        peers.error ? h('p', null, 'The node is not on the network yet.')
          : h('p', { id: 'sync-status' }, count
            ? `Connected to ${count} peer${count === 1 ? '' : 's'}. `
            : 'No peer connected: what you do here is kept and shared when a peer connects. ',
          h('a', { href: '#/peers' }, 'Peers'))));
    }
    put(body, ...sections);
  }
  await fill();
  return { refresh: fill };
}

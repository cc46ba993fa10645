// The merge report: what each bundle or sync brought, and what it means for polls (ballots on
// both sides, roll changes an open did not see, devices that equivocated).

import { h, short, put, getOrShow } from '../dom.js';

function merge(m, i, ctx) {
  const families = Object.entries(m.by_family || {}).map(([k, n]) => `${k} ${n}`).join(', ');
  return h('li', { class: 'card' },
    h('h2', null, `Merge ${i + 1}: ${m.source}`),
    h('p', null, `${m.new_ops} new of ${m.ops} ops${families ? ` (${families})` : ''}.`),
    m.polls.length ? [h('h3', null, 'Polls'), h('ul', { class: 'list' }, m.polls.map((p) => h('li', null,
      h('a', { href: `#/polls/${p.poll_id}/results` }, p.question),
      `: ${p.ours_only} ballots only here, ${p.theirs_only} only there`,
      p.voted_on_both_sides.length ? `; voted on both sides: ${p.voted_on_both_sides.map((id) => ctx.name(id)).join(', ')} (the latest revision counts)` : '')))] : null,
    m.new_equivocations.length ? [h('h3', null, 'Devices that signed two different ops at one place'),
      h('ul', { class: 'list' }, m.new_equivocations.map((e) => h('li', null, `device ${short(e.device)}, ${e.lane} lane, op ${e.seq}`)))] : null,
    m.roll_changes_during_open_polls.length ? [h('h3', null, 'Roll changes an open poll did not see'),
      h('ul', { class: 'list' }, m.roll_changes_during_open_polls.map((r) => h('li', null,
        `${r.kind} (${short(r.op_id)}), during ${r.open_polls.length} open poll${r.open_polls.length === 1 ? '' : 's'}: their voters were fixed without it`)))] : null);
}

export async function render(main, _params, ctx) {
  main.append(h('h1', null, 'Merge report'),
    h('p', { class: 'lead' }, 'What each import brought to this node, oldest first.'));
  const list = h('div');
  main.append(list);
  async function fill() {
    const found = await getOrShow(list, '/merges');
    if (!found) return;
    const { merges } = found;
    put(list, merges.length
      ? h('ol', { class: 'merges' }, merges.map((m, i) => merge(m, i, ctx)))
      : h('p', null, 'No merge yet: bundles imported and syncs that brought ops show here.'));
  }
  await fill();
  return { refresh: fill };
}

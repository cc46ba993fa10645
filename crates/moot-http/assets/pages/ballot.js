// A STAR ballot: 0 to 5 stars for every option, one radio group (a fieldset with its legend)
// per option, so it is filled with Tab and the arrow keys and read out by screen readers; a
// clear confirmation after casting; cast again until the poll closes. Conveners open the
// poll, officers close their station or the poll.

import * as api from '../api.js';
import { h, badge, actionButton, facts, when, uid, put } from '../dom.js';

const SCORES = [0, 1, 2, 3, 4, 5];

async function findPoll(id) {
  const polls = (await api.get('/polls')).polls;
  const poll = polls.find((p) => p.poll_id === id);
  if (!poll) {
    throw Object.assign(new Error('No such poll (or it is not public).'), { status: 404 });
  }
  return poll;
}

function ballotForm(poll, confirmation) {
  const scaleId = uid('scale');
  const form = h('form', { class: 'ballot', id: 'ballot', 'aria-describedby': scaleId },
    h('p', { id: scaleId, class: 'hint' },
      'Give every option 0 to 5 stars: 5 for those you like best, 0 for those you like least. Equal scores are fine. Options you leave at 0 get 0.'));
  poll.options.forEach((option, i) => {
    const group = `score-${i}`;
    form.append(h('fieldset', { class: 'stars' },
      h('legend', null, option),
      h('div', { class: 'scale' }, SCORES.map((score) => {
        const input = h('input', {
          type: 'radio', name: group, value: String(score), id: `${group}-${score}`,
          checked: score === 0, 'data-option': option,
        });
        return h('span', { class: 'star' }, input,
          h('label', { for: input.id }, h('span', { 'aria-hidden': 'true', class: 'num' }, String(score)),
            h('span', { class: 'visually-hidden' }, `${score} star${score === 1 ? '' : 's'} for ${option}`)));
      }))));
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Cast my ballot');
  const error = h('div');
  form.append(submit, error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    put(error);
    const scores = {};
    for (const input of form.querySelectorAll('input[type=radio]:checked')) {
      scores[input.dataset.option] = Number(input.value);
    }
    try {
      const cast = await api.post(`/polls/${poll.poll_id}/ballot`, { scores });
      put(confirmation, 
        h('h2', null, 'Your ballot is cast'),
        h('p', null, `Revision ${cast.revision}. Ballot id: `, h('code', { class: 'id', id: 'ballot-id' }, cast.ballot_id)),
        h('p', null, 'You gave: ', poll.options.map((o) => `${o} ${scores[o]}`).join(', '), '.'),
        h('p', null, 'You may change your scores and cast again until the poll closes: your latest ballot counts.'));
      confirmation.hidden = false;
      confirmation.dataset.revision = String(cast.revision);
      submit.textContent = 'Cast again';
      confirmation.focus();
    } catch (e) {
      put(error, h('p', { class: 'message error', role: 'alert' }, e.message));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function render(main, [id], ctx) {
  let poll = await findPoll(id);
  main.append(h('h1', null, poll.question));
  const info = h('div');
  const officer = h('div', { class: 'actions' });
  const confirmation = h('section', {
    class: 'card confirm', id: 'confirmation', tabindex: '-1', role: 'status', hidden: true,
  });
  const ballotSlot = h('div');
  main.append(info, officer, confirmation, ballotSlot,
    h('p', null, h('a', { href: `#/polls/${id}/results` }, 'See the results')));
  let stage = null;
  async function paint() {
    const assemblies = await api.get('/assemblies').catch(() => ({ assemblies: [] }));
    const assembly = assemblies.assemblies.find((a) => a.assembly_id === poll.assembly_id);
    // While it is open: how many ballots this node holds (what a close now would count), so a
    // returning officer sees when the last ballot from another node has arrived.
    let received = '';
    if (poll.stage === 'open') {
      const r = await api.get(`/polls/${id}/results`).catch(() => null);
      if (r) {
        received = `${r.counted}${poll.electorate === null ? '' : ` of ${poll.electorate} voters`}`;
      }
    }
    put(info, facts([
      ['Stage', badge(poll.stage, poll.stage)],
      ['Assembly', assembly ? h('a', { href: `#/assemblies/${encodeURIComponent(assembly.assembly_id)}` }, assembly.name) : poll.assembly_id],
      ['Seats', poll.seats > 1 ? `${poll.seats} (Bloc STAR)` : '1'],
      ['Voters (fixed at the open)', poll.electorate === null ? '' : String(poll.electorate)],
      ['Opens (advisory)', when(poll.opens_at)],
      ['Closes (advisory)', poll.closes_at ? `${when(poll.closes_at)} — only a returning officer's close counts` : ''],
      ['Quorum', poll.quorum ? String(poll.quorum) : ''],
      ['Ballots received on this node', received],
    ]));
    const me = ctx.me && ctx.me.member_id;
    const buttons = [];
    if (ctx.session.may_write) {
      if (poll.stage === 'created') {
        buttons.push(actionButton('Open the poll', async () => { await api.post(`/polls/${id}/open`); await refresh(); }));
      }
      if (poll.stage === 'open' && me && poll.stations.includes(me)) {
        buttons.push(actionButton('Close my polling station', async () => { await api.post(`/polls/${id}/close-station`); await refresh(); }));
      }
      if (poll.stage === 'open' && me && poll.officers.includes(me)) {
        buttons.push(actionButton('Close the poll', async () => {
          // eslint-disable-next-line no-alert
          if (window.confirm('Close the poll? Exactly the ballots this node holds now will count.')) {
            await api.post(`/polls/${id}/close`);
            await refresh();
            ctx.go(`#/polls/${id}/results`);
          }
        }));
      }
    }
    put(officer, ...buttons);
    if (stage !== poll.stage) {
      stage = poll.stage;
      if (poll.stage === 'open' && ctx.session.may_write) {
        put(ballotSlot, ballotForm(poll, confirmation));
      } else if (poll.stage === 'open') {
        put(ballotSlot, h('p', { class: 'message info' }, 'Sign in as a member of the assembly to vote.'));
      } else if (poll.stage === 'created') {
        put(ballotSlot, h('p', { class: 'message info' }, 'Not open yet: a convener opens it.'));
      } else {
        put(ballotSlot, h('p', { class: 'message info', role: 'status' }, 'This poll is closed. ',
          h('a', { href: `#/polls/${id}/results` }, 'See the result')));
      }
    }
  }
  async function refresh() {
    poll = await findPoll(id);
    await paint();
  }
  await paint();
  return { refresh };
}

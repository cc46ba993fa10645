// A proposal: its text in a shared editor (edits go to the node as splices; the node's newer
// text comes back live without clobbering typing not sent yet), amendments, threaded
// comments, stances and the outcome.

import * as api from '../api.js';
import { h, field, onSubmit, select, badge, actionButton, facts, uid, put, downloadButton } from '../dom.js';
import { splice, rebase, mapIndex } from '../editor.js';

/** Typing is sent once it pauses this long. */
const IDLE_MS = 300;

/** The editor: a textarea kept in step with the node's copy of the text. */
class LiveText {
  constructor(id, textarea, status, heads) {
    this.id = id;
    this.textarea = textarea;
    this.status = status;
    this.sent = textarea.value;
    // The node's version of `sent` (its document heads): an edit's positions count in it, so
    // the node puts the edit where it was typed even if a peer's edit arrived meanwhile.
    // Null just after an edit of ours, until the node's text is fetched again.
    this.heads = heads;
    this.inflight = false;
    this.epoch = 0;
    this.timer = null;
    textarea.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.say('Saving…');
      this.timer = setTimeout(() => this.flush(), IDLE_MS);
    });
    textarea.addEventListener('blur', () => {
      clearTimeout(this.timer);
      this.flush();
    });
  }

  say(text) {
    this.status.textContent = text;
  }

  /** Sends what was typed since the last send, as one splice. */
  async flush() {
    if (this.inflight) {
      return;
    }
    if (!this.heads) {
      // Learn which version of the text `sent` is first, so the edit is counted in it.
      await this.pull();
      if (this.inflight) {
        return;
      }
    }
    const now = this.textarea.value;
    const edit = splice(this.sent, now);
    if (!edit) {
      this.say('All changes saved.');
      return;
    }
    this.inflight = true;
    this.epoch += 1;
    try {
      const body = this.heads ? { ...edit, base: this.heads } : edit;
      await api.post(`/proposals/${this.id}/edit`, body);
      this.sent = now;
      // The node's text now may also hold a peer's edit we have not seen: which version `sent`
      // is, is known again at the next pull (the next edit waits for it).
      this.heads = null;
      this.say('All changes saved.');
    } catch (error) {
      this.say(`Not saved: ${error.message}`);
    } finally {
      this.inflight = false;
    }
    if (this.textarea.value !== this.sent) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.flush(), IDLE_MS);
    }
    await this.pull();
  }

  /** Fetches the node's text and shows it (rebased onto typing not sent yet). */
  /** `epoch`: this editor's epoch when `known` was asked for (a fetch that began before an
   * edit of ours was sent is older than our text, and is dropped). */
  async pull(known, epoch = this.epoch) {
    if (this.inflight) {
      return;
    }
    const remote = known !== undefined ? known : await api.get(`/proposals/${this.id}`);
    if (epoch !== this.epoch || this.inflight) {
      return;
    }
    this.merge(remote.text, remote.heads);
  }

  merge(remote, heads) {
    this.heads = heads || null;
    if (remote === this.sent) {
      return;
    }
    const area = this.textarea;
    const { text, edit } = rebase(this.sent, remote, area.value);
    this.sent = remote;
    if (text !== area.value) {
      const focused = document.activeElement === area;
      const start = mapIndex(area.selectionStart, edit);
      const end = mapIndex(area.selectionEnd, edit);
      const scroll = area.scrollTop;
      area.value = text;
      if (focused) {
        area.setSelectionRange(start, end);
      }
      area.scrollTop = scroll;
    }
  }
}

function threads(comments) {
  const children = new Map();
  for (const c of comments) {
    const key = c.reply_to && comments.some((o) => o.comment_id === c.reply_to) ? c.reply_to : null;
    if (!children.has(key)) {
      children.set(key, []);
    }
    children.get(key).push(c);
  }
  return children;
}

export async function render(main, [id], ctx) {
  const first = await api.get(`/proposals/${id}`);
  const assemblies = await api.get('/assemblies').catch(() => ({ assemblies: [] }));
  const assembly = assemblies.assemblies.find((a) => a.assembly_id === first.assembly_id);
  const heading = h('h1', null, first.title);
  main.append(heading);
  const about = h('div');
  main.append(about);
  const writable = ctx.session.may_write;

  // The text.
  const textId = uid('text');
  const textarea = h('textarea', {
    id: textId, class: 'editor', rows: 14, spellcheck: 'true', readonly: !writable,
    'aria-describedby': `${textId}-help`,
  });
  textarea.value = first.text;
  const saved = h('p', { class: 'hint', id: `${textId}-status` }, writable ? 'All changes saved.' : 'Read only.');
  main.append(h('section', { class: 'card', 'aria-labelledby': `${textId}-h` },
    h('h2', { id: `${textId}-h` }, 'Text'),
    h('label', { for: textId }, 'Text of the proposal'),
    h('p', { class: 'hint', id: `${textId}-help` }, 'Everyone editing sees each other\'s changes as they are made; yours are saved as you type.'),
    textarea, saved,
    h('p', null, downloadButton(`/proposals/${id}/export`, `proposal-${id.slice(0, 8)}.automerge`, 'Download the document (automerge)'))));
  const live = new LiveText(id, textarea, saved, first.heads);

  // Amendments, stances, comments, outcome.
  const amendments = h('div');
  const stances = h('div');
  const comments = h('ol', { class: 'thread', id: 'comments' });
  const outcome = h('div');
  main.append(
    h('section', { class: 'card', 'aria-labelledby': 'amend-h' }, h('h2', { id: 'amend-h' }, 'Amendments'), amendments,
      writable ? amendForm(id) : null),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'stance-h' }, h('h2', { id: 'stance-h' }, 'Stances'), stances,
        writable ? stanceForm(id) : null),
      h('section', { class: 'card', 'aria-labelledby': 'outcome-h' }, h('h2', { id: 'outcome-h' }, 'Outcome'), outcome)),
    h('section', { class: 'card', 'aria-labelledby': 'comments-h' }, h('h2', { id: 'comments-h' }, 'Comments'), comments,
      writable ? commentForm(id, null, 'Add a comment') : null));

  // Who may accept amendments and decide: the proposer, a convener of the assembly, or one of
  // the hub's stewards and conveners (who convene every assembly). Others are told who does.
  function mayResolve(p) {
    const me = ctx.me && ctx.me.member_id;
    if (!writable || !me) {
      return false;
    }
    if (me === p.proposer || !assembly || assembly.conveners.includes(me)) {
      return true;
    }
    const mine = ctx.roll.find((m) => m.member_id === me);
    return Boolean(mine && mine.status === 'member'
      && (mine.roles.includes('steward') || mine.roles.includes('convener')));
  }

  const shown = new Map();
  function paint(p) {
    const resolves = mayResolve(p);
    const whoDecides = `${ctx.name(p.proposer)} (the proposer) or a convener decides.`;
    heading.textContent = p.title;
    put(about, facts([
      ['Proposed by', ctx.name(p.proposer)],
      ['Assembly', h('a', { href: `#/assemblies/${encodeURIComponent(p.assembly_id)}` }, assembly ? assembly.name : 'the proposal\'s assembly')],
      ['Who sees it', p.public ? 'public' : 'members only'],
      ['Objections standing', String(p.objections)],
      ['Changes to the text', String(p.changes)],
    ]));
    put(amendments, p.amendments.length
      ? h('ol', { class: 'list' }, p.amendments.map((a, i) => h('li', null,
        h('span', null, `Amendment ${i + 1} by ${ctx.name(a.author)}: replace `),
        h('q', null, a.original), ' with ', h('q', null, a.replacement), ' ', badge(a.status, a.status === 'open' ? '' : 'ok'),
        resolves && a.status === 'open' ? [' ',
          actionButton(`Accept amendment ${i + 1}`, async () => { await api.post(`/amendments/${a.amendment_id}/accept`); await refresh(); }),
          ' ',
          actionButton(`Reject amendment ${i + 1}`, async () => { await api.post(`/amendments/${a.amendment_id}/reject`); await refresh(); })] : null)))
      : h('p', null, 'No amendment.'),
    writable && !resolves && p.amendments.some((a) => a.status === 'open')
      ? h('p', { class: 'hint' }, `Amendments are accepted or rejected by ${ctx.name(p.proposer)} (the proposer) or a convener.`) : null);
    put(stances, p.stances.length
      ? h('ul', { class: 'list' }, p.stances.map((st) => h('li', null,
        h('strong', null, ctx.name(st.member)), `: ${st.stance}`, st.reason ? ` — ${st.reason}` : '')))
      : h('p', null, 'No stance yet.'));
    put(outcome, p.outcome
      ? h('p', null, `Decided by ${ctx.name(p.outcome.by)}: ${p.outcome.outcome}. `,
        p.outcome.poll_id ? h('a', { href: `#/polls/${p.outcome.poll_id}` }, 'Go to the poll') : null)
      : [h('p', null, 'Not decided yet.'),
        resolves ? decideForm(id, refresh) : (writable ? h('p', { class: 'hint' }, whoDecides) : null)]);
    const tree = threads(p.comments);
    const add = (parentList, parentId) => {
      for (const c of tree.get(parentId) || []) {
        if (!shown.has(c.comment_id)) {
          const replies = h('ol', { class: 'thread' });
          const item = h('li', { class: 'comment', id: `c-${c.comment_id.slice(0, 12)}` },
            h('p', { class: 'author' }, ctx.name(c.author)),
            h('p', { class: 'text' }, c.text),
            writable ? replyToggle(id, c) : null,
            replies);
          shown.set(c.comment_id, replies);
          parentList.append(item);
        }
        add(shown.get(c.comment_id), c.comment_id);
      }
    };
    add(comments, null);
  }
  async function refresh() {
    const epoch = live.epoch;
    const p = await api.get(`/proposals/${id}`);
    paint(p);
    await live.pull(p, epoch);
  }
  paint(first);
  return { refresh, leave: () => live.flush() };
}

function amendForm(id) {
  const form = h('form', { class: 'stack', id: 'amend' },
    h('h3', null, 'Propose an amendment'),
    field('Replace this text (it must occur once)', h('input', { name: 'replace', required: true })),
    field('With', h('input', { name: 'with' })),
    h('button', { type: 'submit' }, 'Propose the amendment'));
  return onSubmit(form, async (data) => {
    await api.post(`/proposals/${id}/amendments`, { replace: data.get('replace'), with: data.get('with') });
    form.reset();
    return 'Amendment proposed.';
  });
}

function stanceForm(id) {
  const name = uid('stance');
  const choices = [['agree', 'Agree'], ['concerns', 'Concerns'], ['object', 'Object'], ['block', 'Block']];
  const form = h('form', { class: 'stack', id: 'stance' },
    h('fieldset', null, h('legend', null, 'Your stance'),
      choices.map(([value, label], i) => {
        const input = h('input', { type: 'radio', name: 'stance', value, id: `${name}-${value}`, required: i === 0 });
        return h('div', { class: 'check' }, input, h('label', { for: input.id }, label));
      })),
    field('Reason (optional)', h('input', { name: 'reason' })),
    h('button', { type: 'submit' }, 'Give my stance'));
  return onSubmit(form, async (data) => {
    const done = await api.post(`/proposals/${id}/stance`, { stance: data.get('stance'), reason: data.get('reason') });
    return `Stance recorded (revision ${done.revision}).`;
  });
}

function decideForm(id, after) {
  const form = h('form', { class: 'stack', id: 'decide' },
    field('Decide (the proposer or a convener)', select('outcome', [
      ['adopt', 'Adopt'], ['vote', 'Put it to a STAR vote'], ['withdraw', 'Withdraw']])),
    h('button', { type: 'submit' }, 'Decide'));
  return onSubmit(form, async (data) => {
    await api.post(`/proposals/${id}/decide`, { outcome: data.get('outcome') });
    await after();
  });
}

function commentForm(id, replyTo, label) {
  const form = h('form', { class: 'stack' },
    field(label, h('textarea', { name: 'text', rows: 3, required: true })),
    h('button', { type: 'submit' }, replyTo ? 'Reply' : 'Comment'));
  return onSubmit(form, async (data) => {
    const body = { text: data.get('text') };
    if (replyTo) {
      body.reply_to = replyTo;
    }
    await api.post(`/proposals/${id}/comments`, body);
    form.reset();
    return 'Posted.';
  });
}

function replyToggle(id, comment) {
  const holder = h('div');
  const button = h('button', { type: 'button', class: 'minor', 'aria-expanded': 'false' }, 'Reply');
  button.addEventListener('click', () => {
    const open = button.getAttribute('aria-expanded') === 'true';
    button.setAttribute('aria-expanded', open ? 'false' : 'true');
    put(holder, open ? '' : commentForm(id, comment.comment_id, 'Your reply'));
    if (!open) {
      holder.querySelector('textarea').focus();
    }
  });
  return [button, holder];
}

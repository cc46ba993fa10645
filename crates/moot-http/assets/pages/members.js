// The roll: who is a member, steward, convener, coordinator or guest; stewards add members,
// change their role or constituency, and remove them.

import * as api from '../api.js';
import { h, field, onSubmit, select, actionButton, badge, scroller, put, getOrShow } from '../dom.js';

const ROLES = [['member', 'Member'], ['steward', 'Steward'], ['convener', 'Convener'],
  ['coordinator', 'Coordinator'], ['guest', 'Guest']];

function roleOf(m) {
  if (m.status !== 'member') {
    return m.status;
  }
  return m.roles[0] || 'member';
}

export async function render(main, _params, ctx) {
  main.append(h('h1', null, 'Members'));
  const body = h('div');
  main.append(body);
  async function fill() {
    const found = await getOrShow(body, '/members');
    if (!found) return false;
    const { members } = found;
    ctx.roll = members;
    for (const m of members) {
      ctx.names.set(m.member_id, m.name);
    }
    const steward = ctx.isSteward() && ctx.session.may_write;
    const rows = members.map((m) => {
      const cells = [
        h('th', { scope: 'row' }, m.name),
        h('td', null, m.status === 'member' ? (m.roles.length ? m.roles.join(', ') : 'member') : badge(m.status)),
        h('td', null, m.constituency || '—'),
        h('td', null, h('code', { class: 'id', title: m.member_id }, m.member_id.slice(0, 12))),
      ];
      if (steward && m.status !== 'removed') {
        const form = h('form', { class: 'inline' },
          field(`Role of ${m.name}`, select('role', ROLES, roleOf(m))),
          field(`Constituency of ${m.name}`, h('input', { name: 'constituency', value: m.constituency || '', size: 10 })),
          h('button', { type: 'submit' }, 'Update'));
        onSubmit(form, async (data) => {
          await api.patch(`/members/${m.member_id}`, {
            role: data.get('role'), constituency: data.get('constituency'),
          });
          await fill();
        });
        cells.push(h('td', null, form, actionButton(`Remove ${m.name}`, async () => {
          // eslint-disable-next-line no-alert
          if (window.confirm(`Remove ${m.name} from the roll?`)) {
            await api.del(`/members/${m.member_id}`);
            await fill();
          }
        }, { class: 'danger' })));
      }
      return h('tr', null, cells);
    });
    const head = ['Name', 'Standing and roles', 'Constituency', 'Member id'];
    if (steward) {
      head.push('Change');
    }
    put(body, scroller('The roll', h('table', { class: 'table', id: 'roll' },
      h('caption', null, `The roll: ${members.length} on it`),
      h('thead', null, h('tr', null, head.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows))));
    return steward;
  }
  // The form for stewards (shown once the roll says this session acts as one).
  let formShown = false;
  function showForm() {
    if (formShown) {
      return;
    }
    formShown = true;
    const form = h('form', { class: 'card', id: 'add-member' },
      h('h2', null, 'Add a member'),
      h('p', { class: 'hint' }, 'Their member id is on their own node\'s Keys and hub page (or moot id prints it).'),
      field('Member id', h('input', { name: 'member_id', required: true, spellcheck: 'false', pattern: '[0-9a-fA-F]{64}' })),
      field('Name', h('input', { name: 'name', required: true })),
      field('Role', select('role', ROLES, 'member')),
      field('Constituency (optional)', h('input', { name: 'constituency' })),
      h('button', { type: 'submit' }, 'Add to the roll'));
    onSubmit(form, async (data) => {
      const body = { member_id: data.get('member_id').trim(), name: data.get('name'), role: data.get('role') };
      if (data.get('constituency')) {
        body.constituency = data.get('constituency');
      }
      await api.post('/members', body);
      form.reset();
      await fill();
      return `${body.name} is on the roll.`;
    });
    main.append(form);
  }
  async function refresh() {
    if (await fill()) {
      showForm();
    }
  }
  await refresh();
  return { refresh };
}

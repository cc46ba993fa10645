// A poll's results, as `moot poll results` counts them: the winners, score bars, each option's
// histogram, the runoff with its no-preference share, the head-to-head matrix, tiebreaks and
// the lot's seed, each polling station's own figures, and the audit (counted, excluded,
// flags). Prints cleanly for a noticeboard (print.css).

import * as api from '../api.js';
import { h, badge, facts, actionButton, short, scroller, put, getOrShow } from '../dom.js';
import { scoreBars, histogram, runoffBar } from '../charts.js';

const REASONS = {
  superseded_revision: 'a later ballot by the same member counts',
  equivocation: 'two different ballots of the same revision (the other counts)',
  outside_close: 'not seen by the close (cast after it, or elsewhere)',
  other_open: 'cast under a competing open that does not stand',
  not_valid: 'not valid',
};

const RULES = {
  score: 'higher total score',
  five_star: 'more five-star scores',
  lot: 'the lot',
  head_to_head: 'preferred head to head',
  preferred: 'preferred head to head',
};

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), content);
}

function pct(n, of) {
  return of ? `${Math.round((n / of) * 100)}%` : '0%';
}

function scoreTable(options, winners, caption) {
  return scroller(caption, h('table', { class: 'table numbers' },
    h('caption', null, caption),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Option'), h('th', { scope: 'col' }, 'Total'),
      h('th', { scope: 'col' }, 'Average'),
      [0, 1, 2, 3, 4, 5].map((n) => h('th', { scope: 'col' }, h('abbr', { title: `ballots giving ${n} stars` }, `${n}★`))))),
    h('tbody', null, options.map((o) => h('tr', null,
      h('th', { scope: 'row' }, o.name, winners.includes(o.name) ? [' ', badge('winner', 'ok')] : null),
      h('td', null, String(o.total)),
      h('td', null, o.average === undefined ? '' : o.average.toFixed(2)),
      o.histogram.map((n) => h('td', null, String(n))))))));
}

function matrix(options, pairwise) {
  return scroller('Head to head', h('table', { class: 'table numbers matrix', id: 'matrix' },
    h('caption', null, 'Head to head: each cell is the number of ballots scoring the row\'s option higher than the column\'s.'),
    h('thead', null, h('tr', null, h('td'), options.map((o) => h('th', { scope: 'col' }, o.name)))),
    h('tbody', null, options.map((o, i) => h('tr', null, h('th', { scope: 'row' }, o.name),
      options.map((_, j) => h('td', { class: i === j ? 'diag' : (pairwise[i][j] > pairwise[j][i] ? 'more' : '') },
        i === j ? '—' : String(pairwise[i][j]))))))));
}

function runoffText(r) {
  const total = r.a_votes + r.b_votes + r.no_preference;
  return h('div', { class: 'runoff-block' },
    h('p', null, `${r.a}: ${r.a_votes} (${pct(r.a_votes, total)}) · no preference: ${r.no_preference} (${pct(r.no_preference, total)}) · ${r.b}: ${r.b_votes} (${pct(r.b_votes, total)})`,
      r.winner ? ` — ${r.winner} wins the runoff.` : ''),
    runoffBar(r),
    h('p', { class: 'legend', 'aria-hidden': 'true' },
      h('span', { class: 'key a' }), ` ${r.a} `, h('span', { class: 'key none' }), ' no preference ',
      h('span', { class: 'key b' }), ` ${r.b}`));
}

function tiebreakItem(t, seed) {
  const values = t.values ? ` (${t.values.join(' vs ')})` : '';
  const outcome = t.result && t.result.length ? `${t.result.join(', ')} goes through` : 'still tied';
  return h('li', null, `Round ${t.round}, ${t.stage || ''}: between ${t.between.join(' and ')}, by ${RULES[t.rule] || t.rule}${values}: ${outcome}.`,
    t.rule === 'lot' ? [' Drawn with the seed ', h('code', { class: 'id' }, seed), '.'] : null);
}

export async function render(main, [id], ctx) {
  const heading = h('h1', null, 'Results');
  const body = h('div', { class: 'results' });
  main.append(heading, body);
  async function fill() {
    const r = await getOrShow(body, `/polls/${id}/results`,
      h('p', null, h('a', { href: `#/polls/${id}` }, 'Back to the poll')));
    if (!r) return;
    heading.textContent = `Results: ${r.question}`;
    document.title = `${heading.textContent} · Moot`;
    const provisional = r.flags.some((f) => f.kind === 'provisional');
    const winners = r.winners || [];
    const parts = [];
    parts.push(h('div', { class: 'headline' },
      h('p', { class: 'stage' }, badge(r.stage, r.stage),
        provisional ? ' Provisional: the poll is not closed yet, so these figures can still change.' : ' Closed: these figures are final.'),
      h('p', { class: 'winner', id: 'winner' }, winners.length
        ? `${winners.length > 1 ? 'Winners' : 'Winner'}: ${winners.join(', ')}`
        : 'No winner: no ballot counted yet.'),
      facts([
        ['Ballots counted', `${r.counted}${r.electorate !== null && r.electorate !== undefined ? ` of ${r.electorate} voters` : ''}`],
        ['Excluded', String(r.excluded.length)],
        ['Seats', String(r.seats)],
        ['Quorum', r.quorum ? `${r.quorum.required} needed: ${r.quorum.met ? 'met' : 'not met'}` : ''],
      ]),
      h('div', { class: 'no-print actions' },
        h('button', { type: 'button', class: 'print', onclick: () => window.print() }, 'Print for the noticeboard'),
        actionButton('Verify from the signed data', async () => {
          const v = await api.get(`/polls/${id}/verify`);
          return v.ok ? `Verified: ${v.ops_checked} signed ops checked, ${v.counted} ballots recounted, no difference.` : 'Differences found.';
        }),
        h('a', { href: `#/polls/${id}` }, 'The ballot'))));

    parts.push(section('scores-h', 'Scores', scoreBars(r.options, winners),
      scoreTable(r.options, winners, 'Total and average stars, and how many ballots gave each score')));
    parts.push(section('hist-h', 'How each option was scored',
      h('div', { class: 'histograms' }, r.options.map((o) => h('figure', { class: 'hist' },
        histogram(o), h('figcaption', null, o.name))))));
    if (r.runoff) {
      parts.push(section('runoff-h', 'Runoff', h('p', { class: 'hint' },
        'The two highest-scoring options meet; each ballot goes to the one it scored higher.'),
      runoffText(r.runoff),
      r.rounds.length > 1 ? h('ol', { class: 'list' }, r.rounds.map((round) => h('li', null,
        `Seat ${round.seat}: ${round.winner}`, round.runoff ? ` (runoff ${round.runoff.a} ${round.runoff.a_votes} – ${round.runoff.b_votes} ${round.runoff.b}, no preference ${round.runoff.no_preference})` : ''))) : null));
    }
    parts.push(section('matrix-h', 'Head to head', matrix(r.options, r.pairwise)));
    parts.push(section('ties-h', 'Ties and the lot',
      r.tiebreaks.length ? h('ol', { class: 'list' }, r.tiebreaks.map((t) => tiebreakItem(t, r.seed))) : h('p', null, 'No tie to break.'),
      facts([
        ['Lot seed', r.seed ? h('code', { class: 'id' }, r.seed) : 'none yet'],
        ['Lot used', r.lot_used ? 'yes' : 'no'],
        ['Lot order', r.lot_order && r.lot_order.length ? r.lot_order.join(', ') : ''],
      ])));
    const stations = r.stations.map((st, i) => h('div', { class: 'station' },
      h('h3', null, `Station ${i + 1}: closed by ${ctx.name(st.officer)}, ${st.ballots} ballot${st.ballots === 1 ? '' : 's'}`),
      scoreTable(st.options, [], `Station ${i + 1}'s own figures`)));
    if (r.elsewhere && r.stations.length) {
      stations.push(h('div', { class: 'station' },
        h('h3', null, `Elsewhere (at no station): ${r.elsewhere.ballots} ballot${r.elsewhere.ballots === 1 ? '' : 's'}`),
        scoreTable(r.elsewhere.options, [], 'Figures of ballots cast at no station')));
    }
    parts.push(section('stations-h', 'Polling stations', stations.length ? stations : h('p', null, 'No station.')));
    parts.push(section('audit-h', 'Audit',
      h('p', null, `${r.counted} ballot${r.counted === 1 ? '' : 's'} counted; ${r.excluded.length} excluded.`),
      r.excluded.length ? scroller('Excluded ballots', h('table', { class: 'table', id: 'excluded' },
        h('caption', null, 'Excluded ballots and why'),
        h('thead', null, h('tr', null, ['Ballot', 'Member', 'Revision', 'Why'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, r.excluded.map((e) => h('tr', null,
          h('td', null, h('code', { class: 'id', title: e.ballot_id }, short(e.ballot_id))),
          h('td', null, ctx.name(e.member_id)), h('td', null, String(e.revision ?? '')),
          h('td', null, REASONS[e.reason] || e.reason, e.detail ? `: ${e.detail}` : '')))))) : null,
      r.flags.length ? [h('h3', null, 'Flags'), h('ul', { class: 'list' }, r.flags.map((f) => h('li', null,
        h('strong', null, f.kind.replace(/_/g, ' ')), f.message ? `: ${f.message}` : '')))] : null,
      facts([
        ['Poll', h('code', { class: 'id' }, r.poll_id)],
        ['Opened by op', r.open_id ? h('code', { class: 'id' }, r.open_id) : ''],
        ['Closed by op', r.close_id ? h('code', { class: 'id' }, r.close_id) : 'not closed'],
      ]),
      ctx.session.public_only ? null : h('p', { class: 'no-print' }, h('a', { href: '#/merges' }, 'Merge report: what each side brought when nodes synced'))));
    put(body, ...parts);
  }
  await fill();
  return { refresh: fill };
}

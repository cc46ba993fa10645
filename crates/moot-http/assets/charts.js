// Charts as inline SVG, built with DOM calls (no library, nothing fetched): score bars, a
// histogram of the 0–5 scores, the runoff split. Each has a title for screen readers, and the
// page gives the same figures in tables.

import { s, uid } from './dom.js';

/**
 * The width the charts are drawn at, in pixels of the page as it is now (so text in them is as
 * large on a phone as on a desktop): between 260 and 544.
 */
function chartWidth() {
  const main = document.querySelector('main');
  const room = main ? main.clientWidth - 64 : 400;
  return Math.max(260, Math.min(544, room));
}

function titled(svg, text) {
  const id = uid('chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-labelledby', id);
  svg.prepend(s('title', { id }, text));
  return svg;
}

/** Total stars per option, the winners marked. */
export function scoreBars(options, winners) {
  const WIDTH = chartWidth();
  const row = 40;
  const max = Math.max(1, ...options.map((o) => o.total));
  const svg = s('svg', {
    class: 'chart bars', viewBox: `0 0 ${WIDTH} ${options.length * row + 4}`, preserveAspectRatio: 'xMinYMin meet',
  });
  options.forEach((o, i) => {
    const y = i * row;
    const won = winners.includes(o.name);
    const width = Math.max(1, Math.round((o.total / max) * (WIDTH - 60)));
    svg.append(
      s('text', { x: 0, y: y + 13, class: won ? 'label won' : 'label' }, won ? `${o.name} (winner)` : o.name),
      s('rect', { x: 0, y: y + 18, width, height: 16, rx: 2, class: won ? 'bar won' : 'bar' }),
      s('text', { x: width + 6, y: y + 31, class: 'value' }, String(o.total)));
  });
  return titled(svg, `Total stars: ${options.map((o) => `${o.name} ${o.total}`).join(', ')}`);
}

/** How many ballots gave an option 0, 1, … 5 stars. */
export function histogram(option) {
  const counts = option.histogram;
  const max = Math.max(1, ...counts);
  const w = 28;
  const height = 90;
  const svg = s('svg', { class: 'chart histogram', viewBox: `0 0 ${counts.length * (w + 6)} ${height + 36}` });
  counts.forEach((n, score) => {
    const x = score * (w + 6);
    const bar = Math.round((n / max) * height);
    svg.append(
      s('rect', { x, y: height - bar + 16, width: w, height: Math.max(bar, 1), class: 'bar' }),
      s('text', { x: x + w / 2, y: height - bar + 12, class: 'value', 'text-anchor': 'middle' }, String(n)),
      s('text', { x: x + w / 2, y: height + 32, class: 'label', 'text-anchor': 'middle' }, `${score}★`));
  });
  return titled(svg, `${option.name}: ${counts.map((n, score) => `${n} gave ${score}`).join(', ')}`);
}

/** The runoff: ballots preferring a, no preference, preferring b. */
export function runoffBar(runoff) {
  const WIDTH = chartWidth();
  const total = runoff.a_votes + runoff.b_votes + runoff.no_preference;
  const svg = s('svg', { class: 'chart runoff', viewBox: `0 0 ${WIDTH} 34` });
  const parts = [
    [runoff.a_votes, 'a'], [runoff.no_preference, 'none'], [runoff.b_votes, 'b'],
  ];
  let x = 0;
  for (const [n, kind] of parts) {
    const width = total ? (n / total) * WIDTH : 0;
    if (width > 0) {
      svg.append(s('rect', { x, y: 2, width, height: 30, class: `part ${kind}` }));
      if (width > 24) {
        svg.append(s('text', { x: x + width / 2, y: 22, class: `inbar ${kind}`, 'text-anchor': 'middle' }, String(n)));
      }
    }
    x += width;
  }
  return titled(svg, `Runoff: ${runoff.a} ${runoff.a_votes}, no preference ${runoff.no_preference}, ${runoff.b} ${runoff.b_votes}`);
}

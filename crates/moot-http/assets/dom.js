// Building the page: elements made with the DOM API, text set with textContent only (never
// innerHTML with data), so names and texts from other members are shown, never run.

import { download, get } from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
let serial = 0;

/** A fresh element id. */
export function uid(prefix = 'f') {
  serial += 1;
  return `${prefix}-${serial}`;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function apply(element, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      element.setAttribute('class', value);
    } else if (key === 'text') {
      element.textContent = value;
    } else if (key.startsWith('on')) {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'selected') {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

/** `h('p', {class: 'x'}, 'text', child…)`. */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  apply(element, props);
  append(element, children);
  return element;
}

/** An SVG element. */
export function s(tag, props, ...children) {
  const element = document.createElementNS(SVG, tag);
  apply(element, props);
  append(element, children);
  return element;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** The first characters of an id, enough to tell ids apart on a page. */
export function short(id) {
  return typeof id === 'string' && id.length > 12 ? id.slice(0, 8) : String(id ?? '');
}

/** A labelled form control: `field('Name', h('input', {name: 'name'}))`. */
export function field(label, control, hint) {
  const id = control.id || uid('in');
  control.id = id;
  const parts = [h('label', { for: id }, label)];
  if (hint) {
    const hintId = uid('hint');
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('span', { class: 'hint', id: hintId }, hint));
  }
  parts.push(control);
  return h('div', { class: 'field' }, parts);
}

export function select(name, options, selected) {
  return h('select', { name },
    options.map(([value, label]) => h('option', { value, selected: value === selected }, label)));
}

/** A message under a form (errors are alerts, so screen readers hear them). */
export function message(kind, text) {
  return h('p', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/**
 * Runs an action for a form: disables its button while it runs and puts the outcome (or the
 * API's error message) in the form's message slot.
 */
export function onSubmit(form, action) {
  const slot = h('div', { class: 'slot' });
  form.append(slot);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    slot.replaceChildren();
    try {
      const done = await action(new FormData(form), form);
      if (typeof done === 'string') {
        slot.append(message('ok', done));
      } else if (done instanceof Node) {
        slot.append(done);
      }
    } catch (error) {
      slot.append(message('error', error.message || String(error)));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

/** A button that runs an action, showing its error next to it. */
export function actionButton(label, action, props = {}) {
  const slot = h('span', { class: 'slot' });
  const button = h('button', { type: 'button', ...props }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    slot.replaceChildren();
    try {
      const done = await action();
      if (typeof done === 'string') {
        slot.append(message('ok', done));
      }
    } catch (error) {
      slot.append(message('error', error.message || String(error)));
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'action' }, button, slot);
}

/** A "members only" or other refusal in place of a page's content. */
export function refusal(error) {
  const text = error && error.status === 401
    ? 'Members only: sign in as a member to see this.'
    : (error && error.message) || String(error);
  return h('p', { class: 'message error', role: 'alert' }, text);
}

/** What GET `path` answers, or null after showing the refusal (then `more`) in `element`. */
export async function getOrShow(element, path, ...more) {
  try {
    return await get(path);
  } catch (error) {
    put(element, refusal(error), ...more);
    return null;
  }
}

/** A definition list from pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

/** A small badge ("public", "open"). */
export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

/** A date as the API gives it (UTC), readable. */
export function when(text) {
  if (!text) {
    return '';
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    return text;
  }
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * A wide table's frame, scrolled sideways on a phone: focusable and named, so it can be
 * scrolled with the keyboard.
 */
export function scroller(label, child) {
  return h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': label }, child);
}

/** Replaces an element's children (skipping null, undefined and false, unlike replaceChildren). */
export function put(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A button that saves what an API route answers as a file (with this page's owner secret:
 * a plain link would not carry it). */
export function downloadButton(path, name, label, id) {
  const props = { type: 'button', class: 'minor' };
  if (id) {
    props.id = id;
  }
  const button = h('button', props, label);
  button.addEventListener('click', () => {
    download(path, name).catch((error) => {
      button.after(message('error', `Not downloaded: ${error.message}`));
    });
  });
  return button;
}

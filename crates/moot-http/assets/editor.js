// The proposal editor's text logic, free of the DOM: edits as splices in UTF-16 code units (JS
// string indices, which the node's `proposal edit --at` counts in too), and rebasing the
// node's newer text onto local typing not sent yet.

function high(code) {
  return code >= 0xd800 && code <= 0xdbff;
}

function low(code) {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * The one splice turning `before` into `after` (common prefix and suffix kept), never cutting
 * a surrogate pair; `null` if they are equal.
 */
export function splice(before, after) {
  if (before === after) {
    return null;
  }
  let start = 0;
  const shortest = Math.min(before.length, after.length);
  while (start < shortest && before.charCodeAt(start) === after.charCodeAt(start)) {
    start += 1;
  }
  // A common prefix ending in a high surrogate would cut its pair.
  if (start > 0 && high(before.charCodeAt(start - 1))) {
    start -= 1;
  }
  let end = 0;
  const room = shortest - start;
  while (end < room
    && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) {
    end += 1;
  }
  // A common suffix starting with a low surrogate would cut its pair.
  if (end > 0 && low(before.charCodeAt(before.length - end))) {
    end -= 1;
  }
  return {
    at: start,
    delete: before.length - end - start,
    insert: after.slice(start, after.length - end),
  };
}

export function apply(text, edit) {
  if (!edit) {
    return text;
  }
  return text.slice(0, edit.at) + edit.insert + text.slice(edit.at + edit.delete);
}

/** Where position `i` goes once `edit` is applied (a caret inside a replaced range ends after it). */
export function mapIndex(i, edit) {
  if (!edit || i <= edit.at) {
    return i;
  }
  if (i >= edit.at + edit.delete) {
    return i + edit.insert.length - edit.delete;
  }
  return edit.at + edit.insert.length;
}

/**
 * The node's text moved from `base` to `remote` while the page moved from `base` to `local`
 * (typing not sent yet). Returns the text to show — the remote change applied to the local
 * text — and the splice applied to the local text (for moving the caret). Where the two
 * changes overlap the local typing wins (it is sent next, as a splice from `remote`).
 */
export function rebase(base, remote, local) {
  const theirs = splice(base, remote);
  const mine = splice(base, local);
  if (!theirs) {
    return { text: local, edit: null };
  }
  if (!mine) {
    return { text: remote, edit: theirs };
  }
  let edit = null;
  if (theirs.at >= mine.at + mine.delete && !(theirs.at === mine.at && mine.delete === 0 && theirs.delete > 0)) {
    edit = { ...theirs, at: theirs.at + mine.insert.length - mine.delete };
  } else if (theirs.at + theirs.delete <= mine.at) {
    edit = theirs;
  }
  return edit ? { text: apply(local, edit), edit } : { text: local, edit: null };
}

// The proposal editor's text logic (crates/moot-http/assets/editor.js), with node's test
// runner: splices in UTF-16 code units that never cut a surrogate pair, and the node's newer
// text rebased onto typing not sent yet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splice, apply, rebase, mapIndex } from '../../crates/moot-http/assets/editor.js';

test('a splice turns one text into the other', () => {
  const pairs = [['abc', 'abXc'], ['abc', 'ac'], ['', 'x'], ['x', ''], ['aaa', 'aaaa'],
    ['hello world', 'hello brave world'], ['a😀b', 'a😁b'], ['😀', '😀😀'], ['x😀', 'x'], ['é', 'e\u0301']];
  for (const [a, b] of pairs) {
    assert.equal(apply(a, splice(a, b)), b, `${a} → ${b}`);
  }
  assert.equal(splice('same', 'same'), null);
  assert.deepEqual(splice('abc', 'abXc'), { at: 2, delete: 0, insert: 'X' });
});

test('positions are UTF-16 code units and no splice cuts a surrogate pair', () => {
  // 😀 (U+1F600) and 😁 (U+1F601) share their high surrogate.
  assert.deepEqual(splice('a😀b', 'a😁b'), { at: 1, delete: 2, insert: '😁' });
  assert.deepEqual(splice('😀😀', '😀'), { at: 2, delete: 2, insert: '' });
  assert.deepEqual(splice('😀😁', '😁'), { at: 0, delete: 2, insert: '' });
  assert.deepEqual(splice('😀', 'x😀'), { at: 0, delete: 0, insert: 'x' });
});

test('the node\'s change is applied around typing not sent yet', () => {
  // Theirs after mine.
  assert.equal(rebase('hello world', 'hello world!', 'Xhello world').text, 'Xhello world!');
  // Theirs before mine.
  const r = rebase('hello world', 'hello big world', 'hello world!');
  assert.equal(r.text, 'hello big world!');
  // Nothing typed: theirs as is.
  assert.equal(rebase('abc', 'abcd', 'abc').text, 'abcd');
  // Overlapping: the local typing wins (it is sent next).
  assert.equal(rebase('abc', 'aXc', 'aYc').text, 'aYc');
});

test('the caret moves with text inserted before it and stays before text inserted after', () => {
  assert.equal(mapIndex(5, { at: 2, delete: 0, insert: 'xyz' }), 8);
  assert.equal(mapIndex(1, { at: 2, delete: 0, insert: 'xyz' }), 1);
  assert.equal(mapIndex(3, { at: 2, delete: 3, insert: 'x' }), 3);
  assert.equal(mapIndex(9, { at: 2, delete: 3, insert: 'x' }), 7);
});

// The HTTP API: every route answers with the `moot` command's JSON (docs/API.md). Writes carry
// the session's CSRF token; errors come back as ApiError with the API's kind and status.

let session = null;

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function answer(response) {
  const type = response.headers.get('content-type') || '';
  let body = null;
  if (type.includes('application/json')) {
    try {
      body = await response.json();
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.kind || 'failed',
      error.message || `the node answered ${response.status}`);
  }
  return body;
}

/** Where the owner's page keeps its owner secret: this origin's own storage (separate per
 * port, unlike cookies), never sent anywhere but in the X-Moot-Owner header to this node. */
const OWNER_KEY = 'moot-owner';

function ownerHeaders() {
  let owner = null;
  try {
    owner = window.localStorage.getItem(OWNER_KEY);
  } catch {
    owner = null;
  }
  return owner ? { 'X-Moot-Owner': owner } : {};
}

/** The link `moot serve` prints carries the node's web token: passed to the node once (which
 * answers with the owner secret this page keeps), then taken out of the address. */
async function takeToken() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');
  if (!token) {
    return null;
  }
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.hash}`);
  const answered = await answer(await fetch(`/api/session?token=${encodeURIComponent(token)}`, { credentials: 'same-origin' }));
  if (answered && answered.owner) {
    try {
      window.localStorage.setItem(OWNER_KEY, answered.owner);
    } catch {
      // No storage: this page is the owner's only until it is reloaded.
    }
  }
  return answered;
}

/** The session: `{csrf, exposure, signed_in, may_write, public_only, trusted}`. */
export async function loadSession() {
  const fresh = await takeToken();
  session = fresh || await answer(await fetch('/api/session', { credentials: 'same-origin', headers: ownerHeaders() }));
  return session;
}

export function currentSession() {
  return session;
}

export async function get(path) {
  return answer(await fetch(`/api${path}`, { credentials: 'same-origin', headers: ownerHeaders() }));
}

/** Saves what a GET route answers (a bundle, a document) as a file named `name`. */
export async function download(path, name) {
  const response = await fetch(`/api${path}`, { credentials: 'same-origin', headers: ownerHeaders() });
  if (!response.ok) {
    return answer(response);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return null;
}

async function send(method, path, body, raw) {
  if (!session) {
    await loadSession();
  }
  const headers = { 'X-Moot-Csrf': session.csrf, ...ownerHeaders() };
  let payload;
  if (raw !== undefined) {
    headers['Content-Type'] = 'application/octet-stream';
    payload = raw;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(`/api${path}`, {
    method, headers, body: payload, credentials: 'same-origin',
  });
  if (response.status === 403) {
    // A stale token (the node restarted, or the session signed in elsewhere): fetch it again
    // once and retry.
    const copy = response.clone();
    const error = await answer(copy).catch((e) => e);
    if (error instanceof ApiError && error.kind === 'csrf') {
      await loadSession();
      headers['X-Moot-Csrf'] = session.csrf;
      return answer(await fetch(`/api${path}`, {
        method, headers, body: payload, credentials: 'same-origin',
      }));
    }
  }
  return answer(response);
}

export const post = (path, body = {}) => send('POST', path, body);
export const patch = (path, body = {}) => send('PATCH', path, body);
export const del = (path) => send('DELETE', path);
export const upload = (path, bytes) => send('POST', path, undefined, bytes);

/** Signs in as a key held by this node (members voting in turn). */
export async function signIn(member, passphrase) {
  const body = { member };
  if (passphrase) {
    body.passphrase = passphrase;
  }
  session = await send('POST', '/session', body);
  return session;
}

export async function signOut() {
  session = await send('DELETE', '/session');
  return session;
}

// The admin UI: a small single-page app over the admin API (/_/api). Pages are functions that
// render into <main>; the URL hash names the page.

const main = document.getElementById('main');

/** Call the admin API; throws an Error carrying the API's message and status. */
export async function api(method, path, body) {
  const res = await fetch(`/_/api${path}`, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(data?.message || `${res.status} ${res.statusText}`);
    err.status = res.status;
    err.code = data?.code;
    throw err;
  }
  return data;
}

/** An element: tag, attributes (on* are listeners), children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus({ preventScroll: true });
}

// ---- theme

const themeButton = document.getElementById('theme');
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem('outpost-theme'));
themeButton.addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  const next = dark ? 'light' : 'dark';
  localStorage.setItem('outpost-theme', next);
  applyTheme(next);
});

// ---- session

let admin = null;
const who = document.getElementById('who');
const signout = document.getElementById('signout');
const nav = document.getElementById('nav');

function signedIn(a) {
  admin = a;
  who.textContent = a ? a.email : '';
  who.hidden = !a;
  signout.hidden = !a;
  nav.hidden = !a;
}

signout.addEventListener('click', async () => {
  signout.disabled = true;
  try {
    await api('POST', '/admin/logout');
  } catch {
    // Signed out already: the page below says so either way.
  }
  signout.disabled = false;
  signedIn(null);
  location.hash = '#/signin';
});

/** A form whose submit runs `work`; errors appear in place, the button shows progress. */
function form(title, fields, submitText, work) {
  const error = h('p', { class: 'error', role: 'alert', 'aria-live': 'polite' });
  const button = h('button', { class: 'primary', type: 'submit' }, submitText);
  const inputs = fields.map(([name, label, type, extra = {}]) =>
    [h('label', { for: `f-${name}` }, label), h('input', { id: `f-${name}`, name, type, required: true, ...extra })]);
  const el = h('form', { class: 'card narrow', novalidate: true }, h('h1', {}, title), ...inputs.flat(), h('p', {}, button), error);
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    button.disabled = true;
    button.textContent = `${submitText}…`;
    try {
      await work(Object.fromEntries(new FormData(el)));
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
      button.textContent = submitText;
    }
  });
  return el;
}

function signInPage() {
  show(form('Sign in to Outpost', [
    ['email', 'Email', 'email', { autocomplete: 'username' }],
    ['password', 'Password', 'password', { autocomplete: 'current-password' }],
  ], 'Sign in', async ({ email, password }) => {
    const out = await api('POST', '/admin/login', { email, password });
    signedIn(out.admin);
    location.hash = '#/overview';
  }));
  main.querySelector('input')?.focus();
}

function setupPage(token) {
  show(form('Create the first admin account', [
    ['email', 'Email', 'email', { autocomplete: 'username' }],
    ['password', 'Password (at least 10 characters)', 'password', { autocomplete: 'new-password', minlength: 10 }],
  ], 'Create account', async ({ email, password }) => {
    const out = await api('POST', '/admin/setup', { token, email, password });
    signedIn(out.admin);
    history.replaceState(null, '', '/_/#/overview');
    route();
  }));
  main.querySelector('input')?.focus();
}

// ---- pages

const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
const fmtDuration = (s) => {
  const d = Math.floor(s / 86400); const hh = Math.floor((s % 86400) / 3600); const m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
};

let overviewTimer = null;
let lastSample = null;

async function overviewPage() {
  const stat = (label, value, id) => h('div', { class: 'card stat' }, h('div', { class: 'value', id }, value), h('div', { class: 'label' }, label));
  const o = await api('GET', '/overview');
  const now = performance.now();
  const rate = lastSample ? ((o.requests - lastSample.requests) / ((now - lastSample.at) / 1000)) : null;
  lastSample = { requests: o.requests, at: now };
  const r = o.replication || {};
  show(
    h('h1', {}, 'Overview'),
    h('div', { class: 'grid' },
      stat('Health', o.status, 'ov-status'),
      stat('Version', o.version, 'ov-version'),
      stat('Uptime', fmtDuration(o.uptime_seconds), 'ov-uptime'),
      stat('Database size', fmtBytes(o.database_bytes), 'ov-size'),
      stat('Tables', o.tables, 'ov-tables'),
      stat('Users', o.users, 'ov-users'),
      stat('Objects', `${o.objects} in ${o.buckets} buckets`, 'ov-objects'),
      stat('Requests', rate === null ? `${o.requests} total` : `${rate.toFixed(1)}/s`, 'ov-requests'),
      stat('Server errors', o.server_errors, 'ov-errors'),
    ),
    h('h2', {}, 'Replication'),
    h('div', { class: 'card' }, h('dl', { class: 'kv', id: 'ov-replication' },
      h('dt', {}, 'Role'), h('dd', {}, r.role || 'standalone'),
      r.destination ? [h('dt', {}, 'Destination'), h('dd', {}, r.destination)] : null,
      r.txid !== undefined ? [h('dt', {}, 'TXID'), h('dd', {}, r.txid)] : null,
      r.lag_seconds !== undefined ? [h('dt', {}, 'Lag'), h('dd', {}, `${Number(r.lag_seconds).toFixed(1)} s`)] : null,
      r.last_error ? [h('dt', {}, 'Last error'), h('dd', { class: 'error' }, r.last_error)] : null,
    )),
  );
  clearTimeout(overviewTimer);
  overviewTimer = setTimeout(() => { if (location.hash === '#/overview') overviewPage().catch(failed); }, 5000);
}

function failed(err) {
  if (err.status === 401) {
    signedIn(null);
    location.hash = '#/signin';
    return;
  }
  show(h('div', { class: 'card' }, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, err.message)));
}

const pages = { overview: overviewPage };

async function route() {
  clearTimeout(overviewTimer);
  const hash = location.hash || '';
  const setup = /^#setup=([0-9a-f]+)$/.exec(hash);
  if (setup) return setupPage(setup[1]);
  if (!admin) {
    try {
      const me = await api('GET', '/admin/me');
      signedIn(me.admin);
    } catch {
      signedIn(null);
    }
  }
  if (!admin) return signInPage();
  const name = hash.replace(/^#\//, '') || 'overview';
  for (const a of nav.querySelectorAll('a')) a.toggleAttribute('aria-current', a.dataset.page === name);
  for (const a of nav.querySelectorAll('a')) if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
  const page = pages[name] || pages.overview;
  try {
    await page();
  } catch (err) {
    failed(err);
  }
}

window.addEventListener('hashchange', route);
route();

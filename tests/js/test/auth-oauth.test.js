// OAuth / OpenID Connect sign-in end to end: a real OIDC provider (oidc-provider) runs in the
// test process, Outpost is configured with it as provider "keycloak", and the test plays the
// browser through /auth/v1/authorize → provider login + consent → /auth/v1/callback → app.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from '../lib/server.js';
import { startOidc } from '../lib/oidc.js';

const SITE = 'http://localhost:3000';
const APP_CB = 'http://localhost:3000/cb';
const PROVIDER = 'keycloak';

const ACCOUNTS = {
  bob: { email: 'bob@example.com', name: 'Bob Builder' },
  carol: { email: 'carol@example.com' },
  alice: { email: 'alice@example.com' },
  dave: { email: 'dave@example.com' },
  erin: { email: 'erin@example.com' },
};

let idp;
let srv;

before(async () => {
  idp = await startOidc({ accounts: ACCOUNTS });
  srv = await startServer({
    env: {
      ...idp.outpostEnv(PROVIDER),
      // a second provider on the same IdP whose client secret is wrong: the code exchange fails
      OUTPOST_AUTH_PROVIDERS: `${PROVIDER},broken`,
      OUTPOST_AUTH_BROKEN_CLIENT_ID: idp.clientId,
      OUTPOST_AUTH_BROKEN_CLIENT_SECRET: 'not-the-secret',
      OUTPOST_AUTH_BROKEN_DISCOVERY_URL: idp.discoveryUrl,
      OUTPOST_SITE_URL: SITE,
      OUTPOST_AUTH_REDIRECT_URLS: 'http://localhost:3000/**,http://app.test/**',
      // no SMTP: sign-ups are confirmed at once (OUTPOST_AUTH_MAILER_AUTOCONFIRM defaults to true)
    },
  });
  const port = new URL(srv.url).port;
  idp.setRedirectUris([
    `${srv.url}/auth/v1/callback`,
    `http://127.0.0.1:${port}/auth/v1/callback`,
    `http://localhost:${port}/auth/v1/callback`,
  ]);
});
after(async () => {
  await srv?.stop();
  await idp?.stop();
});

function show(res) {
  return JSON.stringify({ data: res.data, error: res.error && { ...res.error, message: res.error.message } });
}

function authOk(res, what = '') {
  assert.equal(res.error, null, `${what} expected success, got ${show(res)}`);
  return res.data;
}

function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
  };
}

function pkceClient() {
  const storage = memoryStorage();
  const client = srv.client('anon', {
    auth: { flowType: 'pkce', storage, persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
  });
  const verifier = () => {
    for (const [k, v] of storage.map) {
      if (k.endsWith('-code-verifier') && !k.includes('-flow-') && !k.includes('-flows-')) {
        return String(JSON.parse(v)).split('/')[0];
      }
    }
    return null;
  };
  return { client, verifier };
}

/** Start an OAuth sign-in with supabase-js and return the authorize URL it built. */
async function authorizeUrl(client, redirectTo = APP_CB) {
  const res = await client.auth.signInWithOAuth({
    provider: PROVIDER,
    options: { redirectTo, skipBrowserRedirect: true },
  });
  const data = authOk(res, 'signInWithOAuth');
  assert.equal(data.provider, PROVIDER);
  assert.ok(data.url.startsWith(`${srv.url}/auth/v1/authorize?`), data.url);
  return data.url;
}

function describeLogin(r) {
  return `location=${r.location} status=${r.status} body=${(r.body ?? '').slice(0, 400)}\nsteps:\n${r.steps.join('\n')}\n` +
    `provider requests: ${JSON.stringify(idp.requests.slice(-8))}\n--- outpost stderr ---\n${srv.logs().stderr.slice(-3000)}`;
}

function parseLocation(location) {
  const u = new URL(location);
  return {
    url: u,
    hash: Object.fromEntries(new URLSearchParams(u.hash.replace(/^#/, ''))),
    query: Object.fromEntries(u.searchParams),
  };
}

/** Sign in through the provider with the implicit flow; returns the fragment parameters. */
async function implicitLogin(account, redirectTo = APP_CB) {
  const url = await authorizeUrl(srv.client('anon'), redirectTo);
  const r = await idp.loginThroughProvider(url, { account });
  assert.ok(r.location, `expected a redirect to the app, got ${describeLogin(r)}`);
  assert.ok([302, 303].includes(r.status), describeLogin(r));
  assert.ok(r.location.startsWith(`${redirectTo}#`), `expected ${redirectTo}#…, got ${describeLogin(r)}`);
  const { hash } = parseLocation(r.location);
  assert.equal(hash.error, undefined, describeLogin(r));
  assert.ok(hash.access_token, describeLogin(r));
  assert.equal(hash.access_token.split('.').length, 3);
  assert.ok(hash.refresh_token, describeLogin(r));
  assert.equal(hash.token_type, 'bearer');
  assert.ok(Number(hash.expires_in) > 0, describeLogin(r));
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(Number(hash.expires_at) - (now + Number(hash.expires_in))) <= 10, describeLogin(r));
  assert.ok(hash.provider_token, `the provider's access token is passed on: ${describeLogin(r)}`);
  return { hash, login: r };
}

async function userOf(accessToken) {
  return authOk(await srv.client('anon').auth.getUser(accessToken), 'getUser').user;
}

/** A redirect (or 4xx) carrying an error and no session. */
function assertErrorOutcome(status, location, body, what) {
  const ctx = `${what}: status=${status} location=${location} body=${(body ?? '').slice(0, 300)}`;
  assert.ok(![404, 405].includes(status), `the route must exist: ${ctx}`);
  if (status >= 400 && status < 500) {
    assert.ok(!/access_token/.test(body ?? ''), ctx);
    return null;
  }
  assert.ok([302, 303].includes(status), `expected an error redirect or a 4xx, ${ctx}`);
  assert.ok(location, ctx);
  const p = parseLocation(new URL(location, srv.url).toString());
  assert.equal(p.hash.access_token, undefined, `no session: ${ctx}`);
  assert.equal(p.query.code, undefined, `no auth code: ${ctx}`);
  assert.ok(p.hash.error || p.query.error, `error parameters expected: ${ctx}`);
  return p;
}

// ---------------------------------------------------------------------------------------------

describe('OAuth through an OpenID Connect provider', () => {
  test('implicit flow: signInWithOAuth → provider login → app URL with #access_token; the user is the provider’s', async () => {
    const { hash } = await implicitLogin('bob');
    const user = await userOf(hash.access_token);
    assert.equal(user.email, 'bob@example.com');
    assert.ok(user.email_confirmed_at, 'a verified provider email confirms the user');
    assert.equal(user.app_metadata?.provider, PROVIDER, JSON.stringify(user.app_metadata));
    assert.ok(user.app_metadata?.providers?.includes(PROVIDER), JSON.stringify(user.app_metadata));
    assert.ok(Array.isArray(user.identities), JSON.stringify(user));
    const ident = user.identities.find((i) => i.provider === PROVIDER);
    assert.ok(ident, `a ${PROVIDER} identity: ${JSON.stringify(user.identities)}`);
    assert.equal(ident.user_id, user.id);
    assert.equal(ident.identity_data?.email, 'bob@example.com', JSON.stringify(ident));
    assert.equal(ident.id, 'bob', `the identity id is the provider's subject: ${JSON.stringify(ident)}`);

    // the client session works with it
    const c = srv.client('anon');
    authOk(await c.auth.setSession({ access_token: hash.access_token, refresh_token: hash.refresh_token }), 'setSession');
    assert.equal(authOk(await c.auth.getUser(), 'getUser').user.id, user.id);

    // signing in again is the same user, still one identity
    const again = await implicitLogin('bob');
    const user2 = await userOf(again.hash.access_token);
    assert.equal(user2.id, user.id);
    assert.equal(user2.identities.filter((i) => i.provider === PROVIDER).length, 1);
  });

  test('the token request to the provider authenticates the client (client_secret_basic or _post)', async () => {
    const tokenReqs = idp.requests.filter((r) => r.method === 'POST' && r.path === '/token');
    assert.ok(tokenReqs.length > 0, `Outpost called the token endpoint: ${JSON.stringify(idp.requests)}`);
    for (const r of tokenReqs) {
      assert.ok(['client_secret_basic', 'client_secret_post'].includes(r.auth), JSON.stringify(r));
      assert.equal(r.body.grant_type, 'authorization_code', JSON.stringify(r));
      assert.ok(String(r.body.redirect_uri).endsWith('/auth/v1/callback'), JSON.stringify(r));
    }
  });

  test('PKCE flow: ?code= at the app, exchangeCodeForSession gives the session once', async () => {
    const { client, verifier } = pkceClient();
    const url = await authorizeUrl(client);
    const q = new URL(url).searchParams;
    assert.ok(q.get('code_challenge'), url);
    assert.equal(q.get('code_challenge_method'), 's256');
    const v = verifier();
    assert.ok(v);

    const r = await idp.loginThroughProvider(url, { account: 'carol' });
    assert.ok(r.location?.startsWith(APP_CB), describeLogin(r));
    const { hash, query } = parseLocation(r.location);
    assert.equal(hash.access_token, undefined, `no tokens in the URL with PKCE: ${r.location}`);
    assert.ok(query.code, `?code= expected: ${describeLogin(r)}`);

    const ex = authOk(await client.auth.exchangeCodeForSession(query.code), 'exchangeCodeForSession');
    assert.ok(ex.session?.access_token);
    assert.equal(ex.user.email, 'carol@example.com');
    assert.equal(ex.user.app_metadata?.provider, PROVIDER);
    assert.equal((await userOf(ex.session.access_token)).id, ex.user.id);

    const res = await fetch(`${srv.url}/auth/v1/token?grant_type=pkce`, {
      method: 'POST',
      headers: { apikey: srv.anonKey, Authorization: `Bearer ${srv.anonKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth_code: query.code, code_verifier: v }),
    });
    const text = await res.text();
    assert.ok(res.status >= 400 && res.status < 500, `a spent code is refused: ${res.status} ${text}`);
    assert.ok(!/access_token/.test(text), text);
  });

  test('a confirmed email user signing in with the provider (same verified email) is linked, not duplicated', async () => {
    const c = srv.client('anon');
    const su = authOk(
      await c.auth.signUp({ email: 'alice@example.com', password: 'alice-password-1' }),
      'signUp (autoconfirmed without SMTP)',
    );
    assert.ok(su.session, `autoconfirm gives a session at once: ${JSON.stringify(su)}`);
    const userId = su.user.id;
    assert.ok(su.user.email_confirmed_at);

    const { hash } = await implicitLogin('alice');
    const user = await userOf(hash.access_token);
    assert.equal(user.id, userId, 'the same user');
    const providers = user.identities.map((i) => i.provider).sort();
    assert.deepEqual(providers, ['email', PROVIDER].sort(), JSON.stringify(user.identities));
    assert.ok(user.app_metadata?.providers?.includes('email'), JSON.stringify(user.app_metadata));
    assert.ok(user.app_metadata?.providers?.includes(PROVIDER), JSON.stringify(user.app_metadata));

    // the password still works and is the same account
    const pw = authOk(
      await srv.client('anon').auth.signInWithPassword({ email: 'alice@example.com', password: 'alice-password-1' }),
      'password sign-in',
    );
    assert.equal(pw.user.id, userId);
    const users = authOk(await srv.client('service').auth.admin.listUsers({ page: 1, perPage: 1000 }), 'listUsers').users;
    assert.equal(users.filter((u) => u.email === 'alice@example.com').length, 1, 'one user with that email');
  });

  test('a redirectTo outside the allow-list falls back to the site URL', async () => {
    const url = await authorizeUrl(srv.client('anon'), 'http://evil.test/steal');
    const r = await idp.loginThroughProvider(url, { account: 'erin' });
    assert.ok(r.location, describeLogin(r));
    const u = new URL(r.location);
    assert.equal(u.origin, SITE, `must fall back to the site URL: ${describeLogin(r)}`);
    assert.ok(!r.location.includes('evil.test'), r.location);
  });
});

describe('OAuth errors', () => {
  test('unknown provider → 400 JSON error', async () => {
    for (const p of ['nope', 'github']) {
      const res = await fetch(
        `${srv.url}/auth/v1/authorize?provider=${p}&redirect_to=${encodeURIComponent(APP_CB)}`,
        { redirect: 'manual' },
      );
      const text = await res.text();
      assert.equal(res.status, 400, `${p}: ${res.status} ${text}`);
      const body = JSON.parse(text);
      const code = body.code ?? body.error_code;
      assert.ok(['validation_failed', 'provider_disabled'].includes(code), `${p}: ${text}`);
      assert.ok(body.msg || body.message || body.error_description, text);
    }
  });

  test('callback with a bogus state gives an error, not a session', async () => {
    const res = await fetch(`${srv.url}/auth/v1/callback?code=bogus-code&state=bogus-state`, { redirect: 'manual' });
    const body = await res.text();
    assertErrorOutcome(res.status, res.headers.get('location'), body, 'bogus state');

    const res2 = await fetch(`${srv.url}/auth/v1/callback?code=bogus-code`, { redirect: 'manual' });
    assertErrorOutcome(res2.status, res2.headers.get('location'), await res2.text(), 'no state');
  });

  test('replaying a callback URL (same code and state) gives no second session', async () => {
    const { login } = await implicitLogin('bob');
    assert.ok(login.callbackUrl, describeLogin(login));
    const res = await fetch(login.callbackUrl, { redirect: 'manual' });
    assertErrorOutcome(res.status, res.headers.get('location'), await res.text(), 'replayed callback');
  });

  test('the user denies consent at the provider → error redirect to the app, no session', async () => {
    const url = await authorizeUrl(srv.client('anon'));
    const r = await idp.loginThroughProvider(url, { account: 'dave', deny: true });
    const p = assertErrorOutcome(r.status, r.location, r.body, `denied: ${describeLogin(r)}`);
    if (p) {
      assert.ok([APP_CB, SITE].some((x) => r.location.startsWith(x)), `back to the app: ${r.location}`);
      const err = p.hash.error ?? p.query.error;
      assert.equal(err, 'access_denied', JSON.stringify({ ...p.hash, ...p.query }));
    }
    // no user was created for dave
    const users = authOk(await srv.client('service').auth.admin.listUsers({ page: 1, perPage: 1000 }), 'listUsers').users;
    assert.ok(!users.some((u) => u.email === 'dave@example.com'), 'no user for a denied sign-in');
  });

  test('a failed code exchange at the provider (wrong client secret) ends in an error redirect', async () => {
    const res = await srv.client('anon').auth.signInWithOAuth({
      provider: 'broken',
      options: { redirectTo: APP_CB, skipBrowserRedirect: true },
    });
    const { url } = authOk(res, 'signInWithOAuth broken');
    const before = idp.requests.length;
    const r = await idp.loginThroughProvider(url, { account: 'erin' });
    const tokenCalls = idp.requests.slice(before).filter((x) => x.method === 'POST' && x.path === '/token');
    assert.ok(tokenCalls.length >= 1, `Outpost tried the code exchange: ${describeLogin(r)}`);
    const p = assertErrorOutcome(r.status, r.location, r.body, `broken provider: ${describeLogin(r)}`);
    if (p) assert.ok([APP_CB, SITE].some((x) => r.location.startsWith(x)), r.location);
  });

  test('an unverified provider email does not take over an existing account', async () => {
    const email = `mallory-${randomBytes(3).toString('hex')}@example.com`;
    const su = authOk(
      await srv.client('anon').auth.signUp({ email, password: 'victim-password-1' }),
      'victim signs up',
    );
    idp.addAccount('mallory', { email, email_verified: false });
    const url = await authorizeUrl(srv.client('anon'));
    const r = await idp.loginThroughProvider(url, { account: 'mallory' });
    assert.ok(r.location || r.status >= 400, describeLogin(r));
    if (r.location) {
      const { hash } = parseLocation(r.location);
      if (hash.access_token) {
        const user = await userOf(hash.access_token);
        assert.notEqual(user.id, su.user.id, 'an unverified email must not sign in as the existing user');
      }
    }
    const victim = authOk(await srv.client('service').auth.admin.getUserById(su.user.id), 'getUserById').user;
    assert.deepEqual(
      victim.identities.map((i) => i.provider),
      ['email'],
      `no ${PROVIDER} identity linked to the victim: ${JSON.stringify(victim.identities)}`,
    );
  });
});

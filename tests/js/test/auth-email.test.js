// Auth email flows end to end: Outpost sends real mail to an in-process SMTP server, the test
// reads it, follows its links with fetch (redirect: 'manual') or types its 6-digit code with
// supabase-js, as a user would.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startServer } from '../lib/server.js';
import { startSmtp, verifyLink } from '../lib/smtp.js';

const SITE = 'http://localhost:3000';
const REDIRECTS = 'http://localhost:3000/**,http://app.test/**';
const PASSWORD = 'correct-horse-battery-1';

let smtp;
let srv; // the main server: SMTP on, generous rate limits
const extra = []; // servers started by single tests, stopped in after()

function authEnv(overrides = {}) {
  return {
    ...smtp.env,
    OUTPOST_SITE_URL: SITE,
    OUTPOST_AUTH_REDIRECT_URLS: REDIRECTS,
    OUTPOST_AUTH_RATE_LIMIT_OTP: '1000',
    OUTPOST_AUTH_RATE_LIMIT_SIGNUP: '1000',
    OUTPOST_AUTH_RATE_LIMIT_SIGNIN: '1000',
    OUTPOST_AUTH_RATE_LIMIT_VERIFY: '1000',
    ...overrides,
  };
}

async function startExtra(overrides) {
  const s = await startServer({ env: authEnv(overrides) });
  extra.push(s);
  return s;
}

before(async () => {
  smtp = await startSmtp();
  srv = await startServer({ env: authEnv() });
});
after(async () => {
  for (const s of extra) await s.stop();
  await srv?.stop();
  await smtp?.stop();
});

let seq = 0;
/** A fresh, lower-case address per call. */
const newEmail = (tag) => `${tag}-${++seq}-${randomBytes(4).toString('hex')}@example.com`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function show(res) {
  return JSON.stringify({ data: res.data, error: res.error && { ...res.error, message: res.error.message } });
}

/** Assert a supabase-js auth call succeeded; returns data. */
function authOk(res, what = '') {
  assert.equal(res.error, null, `${what} expected success, got ${show(res)}`);
  return res.data;
}

/** Assert a supabase-js auth call failed with HTTP status and GoTrue error code. */
function authFails(res, status, code, what = '') {
  assert.ok(res.error, `${what} expected error ${status}/${code}, got ${show(res)}`);
  assert.equal(res.error.status, status, `${what} expected status ${status}, got ${show(res)}`);
  if (code !== undefined) assert.equal(res.error.code, code, `${what} expected code ${code}, got ${show(res)}`);
  assert.ok(!res.data?.session, `${what} a failed call carries no session: ${show(res)}`);
  return res.error;
}

/** GET an email link like a browser would, without following the redirect. */
async function follow(link) {
  const res = await fetch(link, { redirect: 'manual' });
  const body = await res.text();
  const location = res.headers.get('location');
  const out = { status: res.status, location, body, hash: {}, query: {} };
  if (location) {
    const u = new URL(location, link);
    out.url = u;
    out.hash = Object.fromEntries(new URLSearchParams(u.hash.replace(/^#/, '')));
    out.query = Object.fromEntries(u.searchParams);
  }
  return out;
}

/** The redirect from a verify link carries a full implicit-flow session in its fragment. */
function assertFragmentSession(r, { startsWith, type }) {
  const ctx = JSON.stringify({ status: r.status, location: r.location, body: r.body.slice(0, 300) });
  assert.ok([302, 303].includes(r.status), `expected a 302/303 redirect, got ${ctx}`);
  assert.ok(r.location.startsWith(startsWith), `expected redirect to ${startsWith}…, got ${ctx}`);
  const h = r.hash;
  assert.ok(h.access_token, `fragment lacks access_token: ${ctx}`);
  assert.equal(h.access_token.split('.').length, 3, `access_token is a JWT: ${ctx}`);
  assert.ok(h.refresh_token, `fragment lacks refresh_token: ${ctx}`);
  assert.equal(h.token_type, 'bearer', ctx);
  const expiresIn = Number(h.expires_in);
  assert.ok(Number.isInteger(expiresIn) && expiresIn > 0, `expires_in: ${ctx}`);
  const expiresAt = Number(h.expires_at);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(expiresAt - (now + expiresIn)) <= 10, `expires_at ≈ now + expires_in: ${ctx}`);
  if (type) assert.equal(h.type, type, ctx);
  assert.equal(h.error, undefined, ctx);
  return h;
}

/** A redirect (or a 4xx) that carries an error and no session. */
function assertLinkRejected(r, what = '') {
  const ctx = `${what} ${JSON.stringify({ status: r.status, location: r.location, body: r.body.slice(0, 300) })}`;
  assert.ok(![404, 405].includes(r.status), `the verify route must exist: ${ctx}`);
  if (r.status >= 400 && r.status < 500) {
    assert.ok(!/access_token/.test(r.body), ctx);
    return;
  }
  assert.ok([302, 303].includes(r.status), `expected an error redirect or 4xx, got ${ctx}`);
  assert.equal(r.hash.access_token, undefined, `no session expected: ${ctx}`);
  assert.equal(r.query.code, undefined, `no auth code expected: ${ctx}`);
  assert.ok(r.hash.error || r.query.error, `the redirect names an error: ${ctx}`);
}

/** GET /auth/v1/user with an access token. */
async function userOf(s, accessToken) {
  const res = await s.client('anon').auth.getUser(accessToken);
  return authOk(res, 'getUser').user;
}

async function createConfirmedUser(s, email, password = PASSWORD) {
  const res = await s.client('service').auth.admin.createUser({ email, password, email_confirm: true });
  return authOk(res, 'admin.createUser').user;
}

async function listEmails(s) {
  const res = await s.client('service').auth.admin.listUsers({ page: 1, perPage: 1000 });
  return authOk(res, 'admin.listUsers').users.map((u) => u.email);
}

/** A verify link's query parameters. */
const linkParams = (link) => Object.fromEntries(new URL(link).searchParams);

/** A different 6-digit code. */
const otherCode = (code) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
  };
}

function pkceClient(s) {
  const storage = memoryStorage();
  const client = s.client('anon', {
    auth: {
      flowType: 'pkce',
      storage,
      persistSession: true,
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
  });
  /** the verifier of the flow started last (the legacy `…-code-verifier` slot) */
  const verifier = () => {
    for (const [k, v] of storage.map) {
      if (k.endsWith('-code-verifier') && !k.includes('-flow-') && !k.includes('-flows-')) {
        return String(JSON.parse(v)).split('/')[0];
      }
    }
    return null;
  };
  return { client, storage, verifier };
}

async function postJson(s, pathAndQuery, body, key = s.anonKey) {
  const res = await fetch(`${s.url}${pathAndQuery}`, {
    method: 'POST',
    headers: { apikey: key, Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* keep text */
  }
  return { status: res.status, json, text };
}

// ---------------------------------------------------------------------------------------------

describe('sign-up with email confirmation', () => {
  test('signUp returns the user without a session; password sign-in waits for the confirmation', async () => {
    const email = newEmail('signup');
    const c = srv.client('anon');
    const res = await c.auth.signUp({
      email,
      password: PASSWORD,
      options: { emailRedirectTo: 'http://app.test/welcome', data: { plan: 'free' } },
    });
    const data = authOk(res, 'signUp');
    assert.equal(data.session, null, `no session before confirmation: ${show(res)}`);
    assert.ok(data.user, show(res));
    assert.equal(typeof data.user.id, 'string');
    assert.equal(data.user.email, email);
    assert.ok(!data.user.email_confirmed_at, `email_confirmed_at must be empty: ${show(res)}`);
    assert.equal(typeof data.user.confirmation_sent_at, 'string', show(res));
    assert.equal(data.user.user_metadata?.plan, 'free', show(res));
    const userId = data.user.id;

    authFails(
      await srv.client('anon').auth.signInWithPassword({ email, password: PASSWORD }),
      400,
      'email_not_confirmed',
      'sign-in before confirming',
    );

    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, `the mail shows a 6-digit code:\n${mail.text}`);
    const link = verifyLink(mail);
    assert.ok(link.startsWith(`${srv.url}/auth/v1/verify?`), `link points at Outpost: ${link}`);
    const lp = linkParams(link);
    assert.equal(lp.type, 'signup', link);
    assert.ok(lp.token, link);
    assert.equal(lp.redirect_to, 'http://app.test/welcome', link);
    assert.ok(mail.text.includes(mail.code), `code in the text part:\n${mail.text}`);
    assert.ok(mail.text.includes('/auth/v1/verify?'), `link in the text part:\n${mail.text}`);
    assert.ok(mail.html.includes(mail.code), `code in the HTML part:\n${mail.html}`);
    assert.ok(mail.html.includes('/auth/v1/verify?'), `link in the HTML part:\n${mail.html}`);

    const r = await follow(link);
    const h = assertFragmentSession(r, { startsWith: 'http://app.test/welcome', type: 'signup' });

    const user = await userOf(srv, h.access_token);
    assert.equal(user.id, userId);
    assert.equal(user.email, email);
    assert.ok(user.email_confirmed_at, 'confirmed after following the link');

    const signIn = authOk(
      await srv.client('anon').auth.signInWithPassword({ email, password: PASSWORD }),
      'sign-in after confirming',
    );
    assert.ok(signIn.session?.access_token);
    assert.equal(signIn.user.id, userId);

    // The link is single-use.
    assertLinkRejected(await follow(link), 'second use of the confirmation link');
  });

  test('signUp with an already confirmed address reveals nothing and sends no mail', async () => {
    const email = newEmail('taken');
    const real = await createConfirmedUser(srv, email);
    const res = await srv.client('anon').auth.signUp({ email, password: 'another-password-9' });
    const data = authOk(res, 'signUp of a taken address (GoTrue answers like a new sign-up)');
    assert.equal(data.session, null, show(res));
    assert.ok(data.user, show(res));
    assert.equal(data.user.email, email, show(res));
    assert.notEqual(data.user.id, real.id, `the real user id must not leak: ${show(res)}`);
    assert.deepEqual(data.user.identities ?? [], [], `obfuscated user has no identities: ${show(res)}`);
    await smtp.expectNoMail({ to: email, withinMs: 1000 });
    // the real account is untouched: its password still works, the new one does not
    authOk(await srv.client('anon').auth.signInWithPassword({ email, password: PASSWORD }), 'real password');
    authFails(
      await srv.client('anon').auth.signInWithPassword({ email, password: 'another-password-9' }),
      400,
      'invalid_credentials',
    );
  });

  test('resend({type: "signup"}) sends another confirmation mail that works', async () => {
    const email = newEmail('resend');
    authOk(await srv.client('anon').auth.signUp({ email, password: PASSWORD }), 'signUp');
    const first = await smtp.waitForMail({ to: email });
    assert.ok(verifyLink(first));

    const res = await srv.client('anon').auth.resend({
      type: 'signup',
      email,
      options: { emailRedirectTo: 'http://localhost:3000/after-resend' },
    });
    authOk(res, 'resend');
    const second = await smtp.waitForMail({ to: email });
    const link = verifyLink(second);
    assert.equal(linkParams(link).type, 'signup', link);
    assert.notEqual(linkParams(link).token, linkParams(verifyLink(first)).token, 'a new token');
    // only the newest token of a kind works
    assertLinkRejected(await follow(verifyLink(first)), 'the first confirmation link after resend');
    authFails(
      await srv.client('anon').auth.verifyOtp({ email, token: first.code, type: 'email' }),
      403,
      'otp_expired',
      'the first code after resend',
    );
    const r = await follow(link);
    assertFragmentSession(r, { startsWith: 'http://localhost:3000/after-resend', type: 'signup' });
  });

  test('verifyOtp with the code of the sign-up mail confirms it too', async () => {
    const email = newEmail('signupcode');
    const c = srv.client('anon');
    authOk(await c.auth.signUp({ email, password: PASSWORD }), 'signUp');
    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, mail.text);
    const data = authOk(await c.auth.verifyOtp({ email, token: mail.code, type: 'email' }), 'verifyOtp');
    assert.ok(data.session?.access_token, show({ data }));
    assert.equal(data.user.email, email);
    assert.ok(data.user.email_confirmed_at);
  });
});

describe('email OTP / magic link', () => {
  test('signInWithOtp → mail with a code → verifyOtp gives a session; the code works once', async () => {
    const email = newEmail('otp');
    const created = await createConfirmedUser(srv, email);
    const c = srv.client('anon');
    const sent = await c.auth.signInWithOtp({ email });
    const sd = authOk(sent, 'signInWithOtp');
    assert.equal(sd.session, null);
    assert.equal(sd.user, null);

    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, `magic-link mail shows a code:\n${mail.text}`);
    const link = verifyLink(mail);
    assert.ok(['magiclink', 'email'].includes(linkParams(link).type), link);

    const v = authOk(await c.auth.verifyOtp({ email, token: mail.code, type: 'email' }), 'verifyOtp');
    assert.ok(v.session?.access_token, 'session');
    assert.ok(v.session.refresh_token);
    assert.equal(v.session.token_type, 'bearer');
    assert.equal(v.user.id, created.id);
    assert.equal((await userOf(srv, v.session.access_token)).id, created.id);
    // the client keeps the session
    const { data: gs } = await c.auth.getSession();
    assert.equal(gs.session?.access_token, v.session.access_token);

    authFails(
      await srv.client('anon').auth.verifyOtp({ email, token: mail.code, type: 'email' }),
      403,
      'otp_expired',
      'second use of the code',
    );
    // and the link of the same mail is spent with it
    assertLinkRejected(await follow(link), 'link after its code was used');
  });

  test('verifyOtp({token_hash}) with the token of the mail link (server-side confirm pattern)', async () => {
    const email = newEmail('tokenhash');
    const created = await createConfirmedUser(srv, email);
    authOk(await srv.client('anon').auth.signInWithOtp({ email }), 'signInWithOtp');
    const mail = await smtp.waitForMail({ to: email });
    const { token, type } = linkParams(verifyLink(mail));
    const c = srv.client('anon');
    const v = authOk(await c.auth.verifyOtp({ token_hash: token, type }), `verifyOtp token_hash type=${type}`);
    assert.ok(v.session?.access_token);
    assert.equal(v.user.id, created.id);
    authFails(await srv.client('anon').auth.verifyOtp({ token_hash: token, type }), 403, 'otp_expired', 'reused hash');
    authFails(
      await srv.client('anon').auth.verifyOtp({ token_hash: 'f'.repeat(64), type: 'email' }),
      403,
      'otp_expired',
      'unknown hash',
    );
  });

  test('signInWithOtp for a new address creates the user; verifyOtp confirms it', async () => {
    const email = newEmail('otpnew');
    const c = srv.client('anon');
    authOk(await c.auth.signInWithOtp({ email, options: { data: { src: 'otp' } } }), 'signInWithOtp');
    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, mail.text);
    const v = authOk(await c.auth.verifyOtp({ email, token: mail.code, type: 'email' }), 'verifyOtp');
    assert.equal(v.user.email, email);
    assert.ok(v.user.email_confirmed_at);
    assert.equal(v.user.user_metadata?.src, 'otp');
  });

  test('a wrong code is refused with otp_expired (403) and does not spend the right one', async () => {
    const email = newEmail('wrongcode');
    await createConfirmedUser(srv, email);
    const c = srv.client('anon');
    authOk(await c.auth.signInWithOtp({ email }), 'signInWithOtp');
    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, mail.text);

    authFails(await c.auth.verifyOtp({ email, token: otherCode(mail.code), type: 'email' }), 403, 'otp_expired');
    // a right code for another address is wrong for this one
    authFails(await c.auth.verifyOtp({ email: newEmail('nobody'), token: mail.code, type: 'email' }), 403, 'otp_expired');

    const v = authOk(await c.auth.verifyOtp({ email, token: mail.code, type: 'email' }), 'right code afterwards');
    assert.ok(v.session?.access_token);
  });

  test('shouldCreateUser:false answers the same for unknown and known addresses', async () => {
    const known = newEmail('known');
    const unknown = newEmail('unknown');
    await createConfirmedUser(srv, known);

    const rk = await srv.client('anon').auth.signInWithOtp({ email: known, options: { shouldCreateUser: false } });
    const ru = await srv.client('anon').auth.signInWithOtp({ email: unknown, options: { shouldCreateUser: false } });
    authOk(rk, 'known');
    authOk(ru, 'unknown (must not reveal that it does not exist)');
    assert.deepEqual(ru.data, rk.data, 'identical answers');

    const mail = await smtp.waitForMail({ to: known });
    assert.match(mail.code ?? '', /^\d{6}$/);
    await smtp.expectNoMail({ to: unknown, withinMs: 1000 });
    assert.ok(!(await listEmails(srv)).includes(unknown), 'no user created for the unknown address');
  });

  test('redirect_to outside the allow-list falls back to the site URL', async () => {
    const email = newEmail('redirect');
    await createConfirmedUser(srv, email);
    const cases = [
      ['http://evil.test/x', SITE],
      ['http://app.test.evil.test/x', SITE],
      ['http://localhost:3000.evil.test/x', SITE],
      ['http://app.test/deep/path?x=1', 'http://app.test/deep/path?x=1'],
      ['http://localhost:3000/cb/inner', 'http://localhost:3000/cb/inner'],
    ];
    for (const [asked, expected] of cases) {
      authOk(
        await srv.client('anon').auth.signInWithOtp({ email, options: { emailRedirectTo: asked } }),
        `signInWithOtp redirect ${asked}`,
      );
      const mail = await smtp.waitForMail({ to: email });
      const r = await follow(verifyLink(mail));
      assertFragmentSession(r, { startsWith: expected });
      const target = r.url;
      if (expected === SITE) {
        assert.equal(target.origin, SITE, `${asked} must fall back to the site URL, got ${r.location}`);
      } else {
        assert.equal(`${target.origin}${target.pathname}${target.search}`, expected, r.location);
      }
    }
  });
});

describe('verify links are not open redirects', () => {
  test('a link whose redirect_to was changed to a foreign URL still lands on an allowed URL', async () => {
    const email = newEmail('tamper');
    await createConfirmedUser(srv, email);
    authOk(
      await srv.client('anon').auth.signInWithOtp({ email, options: { emailRedirectTo: 'http://app.test/ok' } }),
      'signInWithOtp',
    );
    const link = new URL(verifyLink(await smtp.waitForMail({ to: email })));
    link.searchParams.set('redirect_to', 'http://evil.test/steal');
    const r = await follow(link.toString());
    assert.ok([302, 303].includes(r.status), JSON.stringify(r));
    assert.notEqual(r.url.host, 'evil.test', `tokens must not be sent to a foreign site: ${r.location}`);
    assert.ok([SITE, 'http://app.test'].includes(r.url.origin), r.location);
  });

  test('an invalid token with a foreign redirect_to does not redirect there', async () => {
    const q = new URLSearchParams({ token: 'f'.repeat(64), type: 'signup', redirect_to: 'http://evil.test/x' });
    const r = await follow(`${srv.url}/auth/v1/verify?${q}`);
    assertLinkRejected(r, 'bogus token');
    if (r.location) {
      assert.notEqual(r.url.host, 'evil.test', r.location);
      assert.equal(r.url.origin, SITE, r.location);
    }
  });
});

describe('OTP expiry and rate limits', () => {
  test('an expired code is refused with otp_expired (403); so is its link', async () => {
    const s = await startExtra({ OUTPOST_AUTH_OTP_EXPIRY: '1' });
    const email = newEmail('expired');
    await createConfirmedUser(s, email);
    const c = s.client('anon');
    authOk(await c.auth.signInWithOtp({ email }), 'signInWithOtp');
    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, mail.text);
    await sleep(2100);
    assertLinkRejected(await follow(verifyLink(mail)), 'expired link');
    authFails(await c.auth.verifyOtp({ email, token: mail.code, type: 'email' }), 403, 'otp_expired', 'expired code');
  });

  test('OUTPOST_AUTH_RATE_LIMIT_OTP=2: the third mail asked for is refused with 429', async () => {
    const s = await startExtra({ OUTPOST_AUTH_RATE_LIMIT_OTP: '2' });
    const email = newEmail('ratelimit');
    await createConfirmedUser(s, email);
    authOk(await s.client('anon').auth.signInWithOtp({ email }), 'first');
    authOk(await s.client('anon').auth.signInWithOtp({ email }), 'second');
    const third = await s.client('anon').auth.signInWithOtp({ email });
    authFails(third, 429, 'over_request_rate_limit', 'third');
    await smtp.waitForMail({ to: email });
    await smtp.waitForMail({ to: email });
    await smtp.expectNoMail({ to: email, withinMs: 500 });
  });
});

describe('password recovery', () => {
  test('resetPasswordForEmail → recovery link → session → updateUser({password}) → new password signs in', async () => {
    const email = newEmail('recover');
    const unknown = newEmail('recover-unknown');
    const created = await createConfirmedUser(srv, email);
    // a session on another device, from before the reset
    const other = authOk(
      await srv.client('anon').auth.signInWithPassword({ email, password: PASSWORD }),
      'earlier sign-in',
    ).session;

    const rk = await srv.client('anon').auth.resetPasswordForEmail(email, { redirectTo: 'http://app.test/reset' });
    const ru = await srv.client('anon').auth.resetPasswordForEmail(unknown, { redirectTo: 'http://app.test/reset' });
    assert.deepEqual(authOk(rk, 'known'), {});
    assert.deepEqual(authOk(ru, 'unknown'), {}, 'the same {} for an unknown address');
    await smtp.expectNoMail({ to: unknown, withinMs: 1000 });

    const mail = await smtp.waitForMail({ to: email });
    const link = verifyLink(mail);
    assert.equal(linkParams(link).type, 'recovery', link);
    const r = await follow(link);
    const h = assertFragmentSession(r, { startsWith: 'http://app.test/reset', type: 'recovery' });

    const c = srv.client('anon');
    authOk(await c.auth.setSession({ access_token: h.access_token, refresh_token: h.refresh_token }), 'setSession');
    const NEW = 'a-brand-new-password-2';
    const upd = authOk(await c.auth.updateUser({ password: NEW }), 'updateUser');
    assert.equal(upd.user.id, created.id);

    const ok = authOk(await srv.client('anon').auth.signInWithPassword({ email, password: NEW }), 'new password');
    assert.equal(ok.user.id, created.id);
    // the password change ended the other sessions, not the one that made it
    const stale = await fetch(`${srv.url}/auth/v1/user`, {
      headers: { apikey: srv.anonKey, Authorization: `Bearer ${other.access_token}` },
    });
    const staleBody = await stale.text();
    assert.equal(stale.status, 403, `older session: ${stale.status} ${staleBody}`);
    assert.equal(JSON.parse(staleBody).code ?? JSON.parse(staleBody).error_code, 'session_not_found', staleBody);
    assert.equal(authOk(await c.auth.getUser(), 'recovery session still works').user.id, created.id);
    authFails(
      await srv.client('anon').auth.signInWithPassword({ email, password: PASSWORD }),
      400,
      'invalid_credentials',
      'old password',
    );
    assertLinkRejected(await follow(link), 'second use of the recovery link');
  });

  test('verifyOtp({type: "recovery"}) with the code of the recovery mail', async () => {
    const email = newEmail('recovercode');
    await createConfirmedUser(srv, email);
    authOk(await srv.client('anon').auth.resetPasswordForEmail(email), 'reset');
    const mail = await smtp.waitForMail({ to: email });
    assert.match(mail.code ?? '', /^\d{6}$/, mail.text);
    const c = srv.client('anon');
    const v = authOk(await c.auth.verifyOtp({ email, token: mail.code, type: 'recovery' }), 'verifyOtp recovery');
    assert.ok(v.session?.access_token);
    authOk(await c.auth.updateUser({ password: 'recovered-by-code-3' }), 'updateUser');
    authOk(
      await srv.client('anon').auth.signInWithPassword({ email, password: 'recovered-by-code-3' }),
      'sign in with it',
    );
  });
});

describe('email change', () => {
  test('secure email change needs both the old and the new address to confirm', async () => {
    const oldEmail = newEmail('old');
    const newAddr = newEmail('new');
    const created = await createConfirmedUser(srv, oldEmail);
    const c = srv.client('anon');
    authOk(await c.auth.signInWithPassword({ email: oldEmail, password: PASSWORD }), 'sign in');

    const upd = await c.auth.updateUser({ email: newAddr }, { emailRedirectTo: 'http://app.test/changed' });
    const u = authOk(upd, 'updateUser({email})').user;
    assert.equal(u.email, oldEmail, 'not changed yet');
    assert.equal(u.new_email, newAddr, show(upd));
    assert.equal(typeof u.email_change_sent_at, 'string', show(upd));

    const toOld = await smtp.waitForMail({ to: oldEmail });
    const toNew = await smtp.waitForMail({ to: newAddr });
    const oldLink = verifyLink(toOld);
    const newLink = verifyLink(toNew);
    assert.equal(linkParams(oldLink).type, 'email_change', oldLink);
    assert.equal(linkParams(newLink).type, 'email_change', newLink);
    assert.notEqual(linkParams(oldLink).token, linkParams(newLink).token, 'two different tokens');

    const r1 = await follow(oldLink);
    assert.ok([302, 303].includes(r1.status), JSON.stringify(r1));
    assert.ok(!r1.hash.error && !r1.query.error, `first confirmation accepted: ${r1.location}`);
    let now = authOk(await c.auth.getUser(), 'getUser').user;
    assert.equal(now.email, oldEmail, 'one confirmation is not enough');
    authOk(
      await srv.client('anon').auth.signInWithPassword({ email: oldEmail, password: PASSWORD }),
      'old address still signs in',
    );

    const r2 = await follow(newLink);
    assert.ok([302, 303].includes(r2.status), JSON.stringify(r2));
    assert.ok(r2.location.startsWith('http://app.test/changed'), r2.location);
    assert.ok(!r2.hash.error && !r2.query.error, `second confirmation accepted: ${r2.location}`);
    now = authOk(await c.auth.getUser(), 'getUser').user;
    assert.equal(now.id, created.id);
    assert.equal(now.email, newAddr, 'changed after both confirmations');
    assert.ok(!now.new_email, 'no pending change left');

    authOk(
      await srv.client('anon').auth.signInWithPassword({ email: newAddr, password: PASSWORD }),
      'new address signs in',
    );
    authFails(
      await srv.client('anon').auth.signInWithPassword({ email: oldEmail, password: PASSWORD }),
      400,
      'invalid_credentials',
      'old address',
    );
  });
});

describe('email change (more)', () => {
  test('changing to an address another user has fails with email_exists (422)', async () => {
    const mine = newEmail('mine');
    const theirs = newEmail('theirs');
    await createConfirmedUser(srv, mine);
    await createConfirmedUser(srv, theirs);
    const c = srv.client('anon');
    authOk(await c.auth.signInWithPassword({ email: mine, password: PASSWORD }), 'sign in');
    const res = await c.auth.updateUser({ email: theirs });
    assert.ok(res.error, show(res));
    assert.equal(res.error.status, 422, show(res));
    assert.equal(res.error.code, 'email_exists', show(res));
    await smtp.expectNoMail({ to: theirs, withinMs: 500 });
  });

  test('OUTPOST_AUTH_SECURE_EMAIL_CHANGE=false: one mail to the new address, one click changes it', async () => {
    const s = await startExtra({ OUTPOST_AUTH_SECURE_EMAIL_CHANGE: 'false' });
    const oldEmail = newEmail('old1');
    const newAddr = newEmail('new1');
    await createConfirmedUser(s, oldEmail);
    const c = s.client('anon');
    authOk(await c.auth.signInWithPassword({ email: oldEmail, password: PASSWORD }), 'sign in');
    const u = authOk(await c.auth.updateUser({ email: newAddr }), 'updateUser').user;
    assert.equal(u.new_email, newAddr);
    const toNew = await smtp.waitForMail({ to: newAddr });
    await smtp.expectNoMail({ to: oldEmail, withinMs: 700 });
    const r = await follow(verifyLink(toNew));
    assert.ok([302, 303].includes(r.status), JSON.stringify(r));
    assert.ok(!r.hash.error && !r.query.error, r.location);
    assert.equal(authOk(await c.auth.getUser(), 'getUser').user.email, newAddr);
  });
});

describe('invite', () => {
  test('admin.inviteUserByEmail → invite mail → link gives a session; invited_at is set', async () => {
    const email = newEmail('invite');
    const inv = await srv
      .client('service')
      .auth.admin.inviteUserByEmail(email, { data: { team: 'blue' }, redirectTo: 'http://app.test/invited' });
    const user = authOk(inv, 'inviteUserByEmail').user;
    assert.equal(user.email, email);
    assert.equal(typeof user.invited_at, 'string', show(inv));
    assert.equal(user.user_metadata?.team, 'blue', show(inv));
    assert.ok(!user.email_confirmed_at, show(inv));

    const mail = await smtp.waitForMail({ to: email });
    const link = verifyLink(mail);
    assert.equal(linkParams(link).type, 'invite', link);
    const r = await follow(link);
    const h = assertFragmentSession(r, { startsWith: 'http://app.test/invited', type: 'invite' });

    const me = await userOf(srv, h.access_token);
    assert.equal(me.id, user.id);
    assert.ok(me.invited_at);
    assert.ok(me.email_confirmed_at, 'accepting the invite confirms the address');
    assert.equal(me.user_metadata?.team, 'blue');

    // the invited user sets a password and can sign in with it
    const c = srv.client('anon');
    authOk(await c.auth.setSession({ access_token: h.access_token, refresh_token: h.refresh_token }), 'setSession');
    authOk(await c.auth.updateUser({ password: 'invited-password-4' }), 'updateUser');
    authOk(
      await srv.client('anon').auth.signInWithPassword({ email, password: 'invited-password-4' }),
      'sign in',
    );
  });

  test('inviteUserByEmail needs the service_role key', async () => {
    const res = await srv.client('anon').auth.admin.inviteUserByEmail(newEmail('invite-anon'));
    assert.ok(res.error, show(res));
    assert.ok([401, 403].includes(res.error.status), show(res));
  });
});

describe('mail templates', () => {
  test('OUTPOST_AUTH_TEMPLATES_DIR/magic_link.html overrides the magic-link mail', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'outpost-templates-'));
    const MARKER = `MARKER-${randomBytes(4).toString('hex')}`;
    await writeFile(
      path.join(dir, 'magic_link.html'),
      `<h2>${MARKER}</h2>\n<p>Your code: {{ .Token }}</p>\n<p><a href="{{ .ConfirmationURL }}">Log in</a></p>\n` +
        `<p>email=[{{ .Email }}] site=[{{ .SiteURL }}] hash=[{{ .TokenHash }}] to=[{{ .RedirectTo }}]</p>\n`,
    );
    await writeFile(path.join(dir, 'magic_link.subject'), `Sign in ${MARKER}\n`);
    try {
      const s = await startExtra({ OUTPOST_AUTH_TEMPLATES_DIR: dir });
      const email = newEmail('template');
      await createConfirmedUser(s, email);
      authOk(
        await s.client('anon').auth.signInWithOtp({ email, options: { emailRedirectTo: 'http://app.test/tpl' } }),
        'signInWithOtp',
      );
      const mail = await smtp.waitForMail({ to: email });
      const all = `${mail.html}\n${mail.text}`;
      assert.ok(mail.html.includes(MARKER), `the custom template was used:\n${all}`);
      assert.ok(mail.text.includes(MARKER), `the text part is derived from it:\n${mail.text}`);
      assert.equal(mail.subject.trim(), `Sign in ${MARKER}`, 'subject from magic_link.subject');
      assert.ok(!/\{\{/.test(all), `no unrendered placeholders:\n${all}`);
      assert.match(mail.code ?? '', /^\d{6}$/, all);
      assert.ok(mail.text.includes(`Your code: ${mail.code}`), mail.text);
      const link = verifyLink(mail);
      assert.ok(link.startsWith(`${s.url}/auth/v1/verify?`), link);
      assert.ok(mail.html.includes(`email=[${email}]`), mail.html);
      assert.ok(mail.html.includes(`site=[${SITE}]`), mail.html);
      assert.ok(mail.html.includes(`hash=[${linkParams(link).token}]`), mail.html);
      assert.ok(mail.html.includes('to=[http://app.test/tpl]'), mail.html);
      assertFragmentSession(await follow(link), { startsWith: 'http://app.test/tpl' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('PKCE email flow', () => {
  test('signInWithOtp (pkce) → link → ?code= → exchangeCodeForSession; the code works once', async () => {
    const email = newEmail('pkce');
    const created = await createConfirmedUser(srv, email);
    const { client, verifier } = pkceClient(srv);
    authOk(
      await client.auth.signInWithOtp({ email, options: { emailRedirectTo: 'http://app.test/pkce' } }),
      'signInWithOtp',
    );
    const v = verifier();
    assert.ok(v && v.length >= 43, 'the client stored a code verifier');

    const mail = await smtp.waitForMail({ to: email });
    const link = verifyLink(mail);
    assert.ok(linkParams(link).token, link);
    const r = await follow(link);
    assert.ok([302, 303].includes(r.status), JSON.stringify(r));
    assert.ok(r.location.startsWith('http://app.test/pkce'), r.location);
    assert.equal(r.hash.access_token, undefined, `no tokens in the URL in PKCE flow: ${r.location}`);
    const code = r.query.code;
    assert.ok(code, `?code= in ${r.location}`);

    const ex = authOk(await client.auth.exchangeCodeForSession(code), 'exchangeCodeForSession');
    assert.ok(ex.session?.access_token);
    assert.equal(ex.user.id, created.id);
    assert.equal((await userOf(srv, ex.session.access_token)).email, email);

    const again = await postJson(srv, '/auth/v1/token?grant_type=pkce', { auth_code: code, code_verifier: v });
    assert.ok(again.status >= 400 && again.status < 500, `a spent code is refused: ${again.status} ${again.text}`);
    assert.ok(!again.json?.access_token, again.text);
  });

  test('resetPasswordForEmail (pkce) → link → ?code= → exchange → updateUser({password})', async () => {
    const email = newEmail('pkce-reset');
    const created = await createConfirmedUser(srv, email);
    const { client } = pkceClient(srv);
    assert.deepEqual(
      authOk(await client.auth.resetPasswordForEmail(email, { redirectTo: 'http://app.test/reset' }), 'reset'),
      {},
    );
    const link = verifyLink(await smtp.waitForMail({ to: email }));
    assert.equal(linkParams(link).type, 'recovery', link);
    const r = await follow(link);
    assert.ok(r.location?.startsWith('http://app.test/reset'), JSON.stringify(r));
    assert.equal(r.hash.access_token, undefined, r.location);
    assert.ok(r.query.code, `?code= in ${r.location}`);
    const ex = authOk(await client.auth.exchangeCodeForSession(r.query.code), 'exchangeCodeForSession');
    assert.equal(ex.user.id, created.id);
    assert.equal(ex.redirectType, 'recovery');
    authOk(await client.auth.updateUser({ password: 'pkce-reset-password-5' }), 'updateUser');
    authOk(
      await srv.client('anon').auth.signInWithPassword({ email, password: 'pkce-reset-password-5' }),
      'new password',
    );
  });

  test('a code exchanged with another client’s verifier fails', async () => {
    const email = newEmail('pkce-a');
    await createConfirmedUser(srv, email);
    const a = pkceClient(srv);
    authOk(
      await a.client.auth.signInWithOtp({ email, options: { emailRedirectTo: 'http://app.test/pkce' } }),
      'A signInWithOtp',
    );
    const r = await follow(verifyLink(await smtp.waitForMail({ to: email })));
    const code = r.query.code;
    assert.ok(code, `?code= in ${r.location}`);

    // B started its own flow, so it holds a verifier — the wrong one for A's code.
    const b = pkceClient(srv);
    authOk(await b.client.auth.signInWithOtp({ email: newEmail('pkce-b') }), 'B signInWithOtp');
    assert.ok(b.verifier() && b.verifier() !== a.verifier());
    const wrong = await b.client.auth.exchangeCodeForSession(code);
    assert.ok(wrong.error, `exchange with the wrong verifier must fail: ${show(wrong)}`);
    assert.ok(wrong.error.status >= 400 && wrong.error.status < 500, show(wrong));
    assert.ok(!wrong.data?.session, show(wrong));

    const raw = await postJson(srv, '/auth/v1/token?grant_type=pkce', {
      auth_code: code,
      code_verifier: randomBytes(32).toString('base64url'),
    });
    assert.ok(raw.status >= 400 && raw.status < 500, `${raw.status} ${raw.text}`);
    assert.ok(!raw.json?.access_token, raw.text);
  });
});

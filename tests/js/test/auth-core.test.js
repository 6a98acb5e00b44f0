// Auth core (/auth/v1) with the real supabase-js client: sign-up without SMTP (auto-confirm),
// access-token claims, sign-in, password policy, anonymous sign-ins, refresh-token rotation and
// reuse detection, getUser/updateUser, sign-out scopes, JWT errors and the GoTrue error shape,
// the access token against /rest/v1 under RLS, rate limits, /settings, /health, disabled sign-up.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isAuthWeakPasswordError, isAuthApiError } from '@supabase/supabase-js';
import { startServer, decodeJwt } from '../lib/server.js';
import { ok, fails } from '../lib/assert.js';
import {
  GOOD_PASSWORD,
  HIGH_RATE_LIMITS,
  UUID_RE,
  assertAuthError,
  assertSubset,
  authFails,
  authFetch,
  authOk,
  getUserRaw,
  nowSec,
  refreshRaw,
  signInUser,
  signUpUser,
  sleep,
  tamperJwt,
  uniqueEmail,
} from '../lib/authutil.js';

const JWT_EXPIRY = 600; // not the default 3600, and far from the client's 90 s refresh margin
const REUSE_INTERVAL = 2;

const SCHEMA = `
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT (auth.uid())
);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own notes" ON notes FOR ALL TO authenticated
  USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
`;

function assertRecent(ts, ctx) {
  assert.equal(typeof ts, 'number', `${ctx}: timestamp must be a number, got ${JSON.stringify(ts)}`);
  const now = nowSec();
  assert.ok(ts >= now - 120 && ts <= now + 5, `${ctx}: timestamp ${ts} is not close to now (${now})`);
}

describe('auth core: no SMTP, password policy, JWT expiry 600 s, reuse interval 2 s', () => {
  let srv;

  before(async () => {
    srv = await startServer({
      migrations: { '0001_notes.sql': SCHEMA },
      env: {
        ...HIGH_RATE_LIMITS,
        OUTPOST_AUTH_JWT_EXPIRY: String(JWT_EXPIRY),
        OUTPOST_AUTH_REFRESH_REUSE_INTERVAL: String(REUSE_INTERVAL),
        OUTPOST_AUTH_PASSWORD_MIN_LENGTH: '8',
        OUTPOST_AUTH_PASSWORD_REQUIRED_CHARACTERS: 'lower,upper,digit',
      },
    });
  });
  after(async () => {
    await srv?.stop();
  });

  // ---------------------------------------------------------------- sign-up and claims

  test('signUp without SMTP auto-confirms the user and returns a session', async () => {
    const email = uniqueEmail('signup');
    const client = srv.client('anon');
    const data = authOk(
      await client.auth.signUp({ email, password: GOOD_PASSWORD, options: { data: { name: 'Ada', plan: 'free' } } }),
    );
    const { session, user } = data;
    assert.ok(session, `signUp must return a session when no SMTP is configured: ${JSON.stringify(data)}`);
    assert.equal(typeof session.access_token, 'string');
    assert.equal(typeof session.refresh_token, 'string');
    assert.ok(session.refresh_token.length > 0);
    assert.equal(session.token_type, 'bearer');
    assert.equal(session.expires_in, JWT_EXPIRY);
    assert.ok(Math.abs(session.expires_at - (nowSec() + JWT_EXPIRY)) <= 5, `expires_at ${session.expires_at}`);

    assert.match(user.id, UUID_RE);
    assert.equal(user.email, email);
    assert.equal(user.aud, 'authenticated');
    assert.equal(user.role, 'authenticated');
    assert.ok(user.email_confirmed_at, `auto-confirmed user needs email_confirmed_at: ${JSON.stringify(user)}`);
    assert.ok(!Number.isNaN(Date.parse(user.email_confirmed_at)), `email_confirmed_at must be a timestamp`);
    assert.ok(user.confirmed_at, `auto-confirmed user needs confirmed_at: ${JSON.stringify(user)}`);
    assert.equal(user.is_anonymous, false);
    assert.deepEqual(user.app_metadata, { provider: 'email', providers: ['email'] });
    assertSubset(user.user_metadata, { name: 'Ada', plan: 'free' }, 'user_metadata');
    assert.ok(Array.isArray(user.identities) && user.identities.length === 1, `one identity: ${JSON.stringify(user)}`);
    assert.equal(user.identities[0].provider, 'email');
    assert.equal(user.identities[0].user_id, user.id);
    assert.equal(session.user.id, user.id);

    // The client keeps the session.
    const stored = authOk(await client.auth.getSession()).session;
    assert.equal(stored?.access_token, session.access_token);
  });

  test('access token claims: sub, role, aud, exp-iat, session_id, aal, amr, email, phone, metadata, is_anonymous', async () => {
    const email = uniqueEmail('claims');
    const { session, user } = await signUpUser(srv, { email, data: { name: 'Grace', langs: ['cobol'] } });
    const c = decodeJwt(session.access_token);
    assert.equal(c.sub, user.id);
    assert.equal(c.role, 'authenticated');
    assert.equal(c.aud, 'authenticated');
    assert.equal(typeof c.iat, 'number');
    assert.equal(c.exp - c.iat, JWT_EXPIRY, `exp - iat must equal OUTPOST_AUTH_JWT_EXPIRY: ${JSON.stringify(c)}`);
    assertRecent(c.iat, 'iat');
    assert.equal(c.exp, session.expires_at, 'session.expires_at must match the exp claim');
    assert.match(String(c.session_id), UUID_RE);
    assert.equal(c.aal, 'aal1');
    assert.ok(Array.isArray(c.amr) && c.amr.length >= 1, `amr must be a non-empty array: ${JSON.stringify(c.amr)}`);
    assert.equal(c.amr[0].method, 'password');
    assertRecent(c.amr[0].timestamp, 'amr[0].timestamp');
    assert.equal(c.email, email);
    assert.equal(c.phone, '', `phone claim of an email user is "": ${JSON.stringify(c)}`);
    assert.deepEqual(c.app_metadata, { provider: 'email', providers: ['email'] });
    assertSubset(c.user_metadata, { name: 'Grace', langs: ['cobol'] }, 'user_metadata claim');
    assert.equal(c.is_anonymous, false);

    // Each sign-in is a new session with its own id.
    const again = await signInUser(srv, email, GOOD_PASSWORD);
    const c2 = decodeJwt(again.session.access_token);
    assert.equal(c2.sub, user.id);
    assert.match(String(c2.session_id), UUID_RE);
    assert.notEqual(c2.session_id, c.session_id, 'a new sign-in must start a new session');
    assert.equal(c2.amr[0].method, 'password');
  });

  test('duplicate signUp answers 422 user_already_exists (email compared case-insensitively)', async () => {
    const { email } = await signUpUser(srv);
    const res = await srv.client('anon').auth.signUp({ email, password: 'Other1Password' });
    authFails(res, 422, 'user_already_exists');
    assert.equal(res.data.session, null);
    const res2 = await srv.client('anon').auth.signUp({ email: email.toUpperCase(), password: GOOD_PASSWORD });
    authFails(res2, 422, 'user_already_exists', '(upper-cased duplicate)');

    // An upper-cased address signs in to the same (lower-cased) user.
    const { user } = await signInUser(srv, email.toUpperCase(), GOOD_PASSWORD);
    assert.equal(user.email, email);
  });

  // ---------------------------------------------------------------- sign-in

  test('signInWithPassword returns a session; wrong password and unknown email get 400 invalid_credentials', async () => {
    const { email, user } = await signUpUser(srv);
    const client = srv.client('anon');
    const d = authOk(await client.auth.signInWithPassword({ email, password: GOOD_PASSWORD }));
    assert.equal(d.user.id, user.id);
    assert.equal(d.session.user.id, user.id);
    assert.equal(d.session.token_type, 'bearer');
    assert.equal(d.session.expires_in, JWT_EXPIRY);
    assert.ok(d.user.last_sign_in_at, `last_sign_in_at must be set: ${JSON.stringify(d.user)}`);
    assert.equal(decodeJwt(d.session.access_token).sub, user.id);

    const wrong = await srv.client('anon').auth.signInWithPassword({ email, password: 'Wr0ngPassword' });
    authFails(wrong, 400, 'invalid_credentials');
    assert.equal(wrong.data.session, null);
    assert.equal(wrong.data.user, null);

    const unknown = await srv.client('anon').auth.signInWithPassword({
      email: uniqueEmail('nobody'),
      password: GOOD_PASSWORD,
    });
    authFails(unknown, 400, 'invalid_credentials');
    assert.equal(unknown.error.message, wrong.error.message, 'unknown email must not be distinguishable');
  });

  // ---------------------------------------------------------------- password policy

  test('weak passwords get 422 weak_password with reasons (AuthWeakPasswordError)', async () => {
    const cases = [
      { password: 'Ab1xyz', reasons: ['length'], exact: true }, // 6 chars, every class
      { password: 'abcdefghij', reasons: ['characters'], exact: true }, // long, lower only
      { password: 'abc', reasons: ['length', 'characters'], exact: false },
    ];
    for (const { password, reasons, exact } of cases) {
      const email = uniqueEmail('weak');
      const res = await srv.client('anon').auth.signUp({ email, password });
      const err = authFails(res, 422, 'weak_password', `(password ${password})`);
      assert.ok(isAuthWeakPasswordError(err), `expected AuthWeakPasswordError for ${password}, got ${err.name}`);
      assert.ok(Array.isArray(err.reasons), `reasons must be an array for ${password}`);
      if (exact) assert.deepEqual([...err.reasons].sort(), [...reasons].sort(), `reasons for ${password}`);
      else for (const r of reasons) assert.ok(err.reasons.includes(r), `reasons for ${password} lack ${r}: ${err.reasons}`);
      // No user was created.
      authFails(await srv.client('anon').auth.signInWithPassword({ email, password }), 400, 'invalid_credentials');
    }

    // Raw shape: weak_password.reasons next to code/error_code.
    const raw = await authFetch(srv, '/signup', {
      method: 'POST',
      body: { email: uniqueEmail('weakraw'), password: 'short' },
    });
    const body = assertAuthError(raw, 422, 'weak_password');
    assert.ok(Array.isArray(body.weak_password?.reasons), `weak_password.reasons missing: ${raw.text}`);
    assert.ok(body.weak_password.reasons.includes('length'));
  });

  test('a policy-conforming password is accepted', async () => {
    const { session } = await signUpUser(srv, { password: 'Zz9zzzzz' }); // exactly 8, every class
    assert.ok(session.access_token);
  });

  // ---------------------------------------------------------------- anonymous (disabled here)

  test('signInAnonymously is refused when OUTPOST_AUTH_ANONYMOUS_USERS is not set', async () => {
    const res = await srv.client('anon').auth.signInAnonymously();
    authFails(res, 422, 'anonymous_provider_disabled');
    assert.equal(res.data.session, null);
  });

  // ---------------------------------------------------------------- refresh

  test('refreshSession() rotates the refresh token and keeps the session', async () => {
    const { client, session, user } = await signUpUser(srv);
    const d = authOk(await client.auth.refreshSession());
    assert.ok(d.session, 'refreshSession must return a session');
    assert.equal(typeof d.session.access_token, 'string');
    assert.equal(typeof d.session.refresh_token, 'string');
    assert.notEqual(d.session.refresh_token, session.refresh_token, 'refresh token must rotate');
    assert.equal(d.session.expires_in, JWT_EXPIRY);
    assert.equal(d.user.id, user.id);
    const before = decodeJwt(session.access_token);
    const afterC = decodeJwt(d.session.access_token);
    assert.equal(afterC.sub, user.id);
    assert.equal(afterC.session_id, before.session_id, 'refresh stays in the same session');
    assert.equal(afterC.aal, 'aal1');
    assert.equal(afterC.amr[0].method, 'password', 'amr keeps the original sign-in method');
    assert.equal(afterC.exp - afterC.iat, JWT_EXPIRY);

    const stored = authOk(await client.auth.getSession()).session;
    assert.equal(stored.refresh_token, d.session.refresh_token, 'client stores the rotated session');
    const u = await getUserRaw(srv, d.session.access_token);
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.id, user.id);

    // The new refresh token works in turn.
    const d2 = authOk(await client.auth.refreshSession());
    assert.notEqual(d2.session.refresh_token, d.session.refresh_token);
  });

  test('an old refresh token works within the reuse interval; later reuse revokes the whole session', async () => {
    const { session } = await signUpUser(srv);
    const t0 = session.refresh_token;

    const first = authOk(await srv.client('anon').auth.refreshSession({ refresh_token: t0 }), '(first refresh)');
    const t1 = first.session.refresh_token;
    assert.notEqual(t1, t0);

    // Concurrent-tab case: the parent token again, right away.
    const again = authOk(
      await srv.client('anon').auth.refreshSession({ refresh_token: t0 }),
      '(reuse within the interval)',
    );
    assert.ok(again.session?.access_token, 'reuse within the interval must yield a session');
    assert.equal(decodeJwt(again.session.access_token).session_id, decodeJwt(first.session.access_token).session_id);
    const t1b = again.session.refresh_token;

    await sleep((REUSE_INTERVAL + 1.5) * 1000);

    const late = await srv.client('anon').auth.refreshSession({ refresh_token: t0 });
    authFails(late, 400, 'refresh_token_already_used', '(reuse after the interval)');
    assert.equal(late.data.session, null);

    // The whole session is revoked: its newest tokens fail too.
    for (const t of new Set([t1, t1b])) {
      const r = await refreshRaw(srv, t);
      assertAuthError(r, 400, ['refresh_token_not_found', 'refresh_token_already_used'], {
        ctx: '(newest token of a revoked session)',
      });
    }
    const u = await getUserRaw(srv, first.session.access_token);
    assertAuthError(u, 403, 'session_not_found', { ctx: '(access token of the revoked session)' });
  });

  test('an unknown refresh token answers 400 refresh_token_not_found', async () => {
    const res = await srv.client('anon').auth.refreshSession({ refresh_token: 'definitely-not-a-token' });
    authFails(res, 400, 'refresh_token_not_found');
    const raw = await refreshRaw(srv, 'abcdefghijkl');
    assertAuthError(raw, 400, 'refresh_token_not_found');
  });

  // ---------------------------------------------------------------- user

  test('getUser() returns the signed-in user', async () => {
    const { client, user, email } = await signUpUser(srv, { data: { color: 'green' } });
    const d = authOk(await client.auth.getUser());
    assert.equal(d.user.id, user.id);
    assert.equal(d.user.email, email);
    assert.equal(d.user.aud, 'authenticated');
    assert.equal(d.user.role, 'authenticated');
    assertSubset(d.user.user_metadata, { color: 'green' });
    assert.deepEqual(d.user.app_metadata, { provider: 'email', providers: ['email'] });
    assert.ok(d.user.created_at && d.user.updated_at, `timestamps: ${JSON.stringify(d.user)}`);

    // A signed-out client has no user.
    const none = await srv.client('anon').auth.getUser();
    assert.ok(none.error, 'getUser without a session must fail');
    assert.equal(none.data.user, null);
  });

  test('updateUser({data}) merges user_metadata (null removes a key) and new tokens carry it', async () => {
    const { client, user } = await signUpUser(srv, { data: { name: 'Ada', plan: 'free', team: 'x' } });
    const d = authOk(await client.auth.updateUser({ data: { plan: 'pro', age: 36 } }));
    assert.equal(d.user.id, user.id);
    assertSubset(d.user.user_metadata, { name: 'Ada', plan: 'pro', team: 'x', age: 36 }, 'merged metadata');

    const d2 = authOk(await client.auth.updateUser({ data: { team: null } }));
    assert.ok(!('team' in d2.user.user_metadata), `null must remove the key: ${JSON.stringify(d2.user.user_metadata)}`);
    assertSubset(d2.user.user_metadata, { name: 'Ada', plan: 'pro', age: 36 });

    const g = authOk(await client.auth.getUser());
    assertSubset(g.user.user_metadata, { name: 'Ada', plan: 'pro', age: 36 });
    assert.ok(!('team' in g.user.user_metadata));

    const r = authOk(await client.auth.refreshSession());
    assertSubset(decodeJwt(r.session.access_token).user_metadata, { name: 'Ada', plan: 'pro', age: 36 }, 'claims');
  });

  test('updateUser({password}): the new password signs in, the old one no longer does', async () => {
    const { client, email, user } = await signUpUser(srv);
    const NEW = 'N3wPassword';
    const d = authOk(await client.auth.updateUser({ password: NEW }));
    assert.equal(d.user.id, user.id);
    const s = await signInUser(srv, email, NEW);
    assert.equal(s.user.id, user.id);
    authFails(await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD }), 400, 'invalid_credentials');
  });

  test('updateUser({password}) enforces the policy and refuses the same password', async () => {
    const { client, email } = await signUpUser(srv);
    const weak = await client.auth.updateUser({ password: 'short' });
    const err = authFails(weak, 422, 'weak_password');
    assert.ok(isAuthWeakPasswordError(err), `expected AuthWeakPasswordError, got ${err.name}`);
    authFails(await client.auth.updateUser({ password: GOOD_PASSWORD }), 422, 'same_password');
    // Still the old password.
    await signInUser(srv, email, GOOD_PASSWORD);
  });

  // ---------------------------------------------------------------- sign-out

  test("signOut({scope:'others'}) keeps the caller's session and revokes the others", async () => {
    const { email, session: s0 } = await signUpUser(srv);
    const s1 = await signInUser(srv, email, GOOD_PASSWORD);
    const s2 = await signInUser(srv, email, GOOD_PASSWORD);
    const s3 = await signInUser(srv, email, GOOD_PASSWORD);

    const { error } = await s1.client.auth.signOut({ scope: 'others' });
    assert.equal(error, null);

    authOk(await s1.client.auth.refreshSession(), "(#1's own refresh after scope=others)");
    const me = await getUserRaw(srv, s1.session.access_token);
    assert.equal(me.status, 200, `#1's access token must still work: ${me.text}`);

    for (const [name, s] of [['#0', s0], ['#2', s2.session], ['#3', s3.session]]) {
      const r = await refreshRaw(srv, s.refresh_token);
      assertAuthError(r, 400, ['refresh_token_not_found', 'refresh_token_already_used'], { ctx: `(${name} refresh)` });
      const u = await getUserRaw(srv, s.access_token);
      assertAuthError(u, 403, 'session_not_found', { ctx: `(${name} access token)` });
    }
  });

  test("signOut({scope:'local'}) revokes only the caller's session", async () => {
    const { email, session: s0 } = await signUpUser(srv);
    const a = await signInUser(srv, email, GOOD_PASSWORD);
    const b = await signInUser(srv, email, GOOD_PASSWORD);

    const { error } = await a.client.auth.signOut({ scope: 'local' });
    assert.equal(error, null);
    assert.equal(authOk(await a.client.auth.getSession()).session, null, 'local sign-out clears the client session');

    assertAuthError(await refreshRaw(srv, a.session.refresh_token), 400, [
      'refresh_token_not_found',
      'refresh_token_already_used',
    ]);
    assertAuthError(await getUserRaw(srv, a.session.access_token), 403, 'session_not_found');

    authOk(await b.client.auth.refreshSession(), '(other session after scope=local)');
    const u0 = await getUserRaw(srv, s0.access_token);
    assert.equal(u0.status, 200, `the sign-up session must survive a local sign-out elsewhere: ${u0.text}`);
    const r0 = await refreshRaw(srv, s0.refresh_token);
    assert.equal(r0.status, 200, r0.text);
  });

  test('signOut() (global) revokes every session of the user', async () => {
    const { email, session: s0, user } = await signUpUser(srv);
    const a = await signInUser(srv, email, GOOD_PASSWORD);
    const b = await signInUser(srv, email, GOOD_PASSWORD);
    const other = await signUpUser(srv); // another user is not affected

    const { error } = await a.client.auth.signOut();
    assert.equal(error, null);
    assert.equal(authOk(await a.client.auth.getSession()).session, null);

    for (const [name, s] of [['#0', s0], ['a', a.session], ['b', b.session]]) {
      assertAuthError(await refreshRaw(srv, s.refresh_token), 400, ['refresh_token_not_found', 'refresh_token_already_used'], {
        ctx: `(${name} refresh)`,
      });
      assertAuthError(await getUserRaw(srv, s.access_token), 403, 'session_not_found', { ctx: `(${name})` });
    }
    const res = await b.client.auth.getUser();
    assert.ok(res.error, `getUser with a revoked session must fail: ${JSON.stringify(res.data)}`);

    const o = await getUserRaw(srv, other.session.access_token);
    assert.equal(o.status, 200, o.text);
    assert.notEqual(o.json.id, user.id);
    // The user can sign in again.
    await signInUser(srv, email, GOOD_PASSWORD);
  });

  test('POST /logout: unknown scope 400, then 204 with no body, then 403 session_not_found', async () => {
    const { session } = await signUpUser(srv);
    const bad = await authFetch(srv, '/logout?scope=everything', { method: 'POST', token: session.access_token });
    assertAuthError(bad, 400, 'validation_failed', { ctx: '(unknown logout scope)' });
    const still = await getUserRaw(srv, session.access_token);
    assert.equal(still.status, 200, `a refused logout must not revoke anything: ${still.text}`);

    const res = await authFetch(srv, '/logout?scope=global', { method: 'POST', token: session.access_token });
    assert.equal(res.status, 204, `${res.status} ${res.text}`);
    assert.equal(res.text, '');
    const again = await authFetch(srv, '/logout', { method: 'POST', token: session.access_token });
    assertAuthError(again, 403, 'session_not_found');
  });

  // ---------------------------------------------------------------- JWT errors and error shape

  test('a tampered access token answers 403 bad_jwt', async () => {
    const { session, client } = await signUpUser(srv);
    const tampered = tamperJwt(session.access_token);
    assertAuthError(await getUserRaw(srv, tampered), 403, 'bad_jwt');
    // Without X-Supabase-Api-Version: error_code is the string code, code is still present.
    assertAuthError(await authFetch(srv, '/user', { token: tampered, apiVersion: null }), 403, 'bad_jwt', {
      apiVersion: null,
    });
    const viaClient = await client.auth.getUser(tampered);
    authFails(viaClient, 403, 'bad_jwt');
    assert.ok(isAuthApiError(viaClient.error));

    // A token signed with another secret is no better.
    const [h, p] = session.access_token.split('.');
    const foreign = `${h}.${p}.${Buffer.alloc(32, 7).toString('base64url')}`;
    assertAuthError(await getUserRaw(srv, foreign), 403, 'bad_jwt');
    // And garbage is not a JWT at all.
    assertAuthError(await getUserRaw(srv, 'not.a.jwt'), [401, 403], 'bad_jwt');
  });

  test('GET /user without a user token: anon key 401|403, no Authorization 401 no_authorization', async () => {
    const anonOnly = await authFetch(srv, '/user'); // Bearer <anon key>
    assertAuthError(anonOnly, [401, 403], ['no_authorization', 'bad_jwt']);
    const none = await authFetch(srv, '/user', { auth: false }); // apikey only
    assertAuthError(none, 401, 'no_authorization');
  });

  test('an expired access token answers 403 bad_jwt', async () => {
    const { session, user } = await signUpUser(srv);
    const c = decodeJwt(session.access_token);
    const now = nowSec();
    const expired = srv.mintJwt({
      sub: user.id,
      role: 'authenticated',
      aud: 'authenticated',
      session_id: c.session_id,
      email: user.email,
      aal: 'aal1',
      iat: now - 7200,
      exp: now - 3600,
    });
    assertAuthError(await getUserRaw(srv, expired), 403, 'bad_jwt');
    // The same claims, not expired, are accepted (the session is real).
    const fresh = srv.mintJwt({ ...c, iat: now, exp: now + 300 });
    const ok200 = await getUserRaw(srv, fresh);
    assert.equal(ok200.status, 200, ok200.text);
    assert.equal(ok200.json.id, user.id);
  });

  test('errors carry code and error_code and echo X-Supabase-Api-Version', async () => {
    const { email } = await signUpUser(srv);
    const body = { email, password: 'Wr0ngPassword', gotrue_meta_security: {} };
    const withV = await authFetch(srv, '/token?grant_type=password', { method: 'POST', body });
    const j = assertAuthError(withV, 400, 'invalid_credentials');
    assert.equal(j.code, 'invalid_credentials');

    const withoutV = await authFetch(srv, '/token?grant_type=password', { method: 'POST', body, apiVersion: null });
    const j2 = assertAuthError(withoutV, 400, 'invalid_credentials', { apiVersion: null });
    assert.equal(j2.error_code, 'invalid_credentials');

    // Unknown grant type and malformed JSON are 400s with the same shape.
    const grant = await authFetch(srv, '/token?grant_type=nonsense', { method: 'POST', body: {} });
    // GoTrue answers invalid_credentials with msg "unsupported_grant_type".
    assertAuthError(grant, 400, ['unsupported_grant_type', 'validation_failed', 'invalid_credentials']);
    const garbage = await authFetch(srv, '/token?grant_type=password', { method: 'POST', body: '{not json' });
    assertAuthError(garbage, 400, ['bad_json', 'validation_failed']);
  });

  // ---------------------------------------------------------------- the token against /rest/v1

  test('the access token works against /rest/v1: RLS shows each user only their own rows', async () => {
    const a = await signUpUser(srv);
    const b = await signUpUser(srv);

    const ra = ok(await a.client.from('notes').insert({ body: 'a-1' }).select().single(), 201);
    assert.equal(ra.user_id, a.user.id, 'DEFAULT auth.uid() must be the token sub');
    ok(await a.client.from('notes').insert({ body: 'a-2' }), 201);
    const rb = ok(await b.client.from('notes').insert({ body: 'b-1' }).select().single(), 201);
    assert.equal(rb.user_id, b.user.id);

    const seenA = ok(await a.client.from('notes').select('body, user_id').order('id'));
    assert.deepEqual(seenA, [
      { body: 'a-1', user_id: a.user.id },
      { body: 'a-2', user_id: a.user.id },
    ]);
    const seenB = ok(await b.client.from('notes').select('body, user_id').order('id'));
    assert.deepEqual(seenB, [{ body: 'b-1', user_id: b.user.id }]);

    // Writing a row for somebody else violates WITH CHECK.
    fails(await a.client.from('notes').insert({ body: 'forged', user_id: b.user.id }), 403, '42501');
    // Not signed in: anon sees nothing.
    assert.deepEqual(ok(await srv.client('anon').from('notes').select('*')), []);
    // The service key sees all three.
    const all = ok(await srv.client('service').from('notes').select('body').order('id'));
    assert.deepEqual(all, [{ body: 'a-1' }, { body: 'a-2' }, { body: 'b-1' }]);

    // After a global sign-out the revoked token still verifies cryptographically for /rest/v1
    // (stateless JWTs), so we don't assert on that; a refreshed token keeps working.
    const r = authOk(await a.client.auth.refreshSession());
    assert.ok(r.session);
    assert.equal(ok(await a.client.from('notes').select('id')).length, 2);
  });

  // ---------------------------------------------------------------- settings and health

  test('GET /auth/v1/settings describes the configuration', async () => {
    const res = await authFetch(srv, '/settings', { auth: false });
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof res.json, 'object');
    assert.equal(res.json.external?.email, true, res.text);
    assert.equal(res.json.external?.anonymous_users, false, res.text);
    assert.equal(res.json.disable_signup, false);
    assert.equal(res.json.mailer_autoconfirm, true, 'no SMTP: mailer_autoconfirm');
  });

  test('GET /auth/v1/health answers 200 JSON with name and version', async () => {
    const res = await authFetch(srv, '/health', { auth: false });
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(typeof res.json.name, 'string');
    assert.ok(res.json.name.length > 0);
    assert.equal(typeof res.json.version, 'string');
  });
});

describe('auth: anonymous sign-ins enabled', () => {
  let srv;
  before(async () => {
    srv = await startServer({ env: { ...HIGH_RATE_LIMITS, OUTPOST_AUTH_ANONYMOUS_USERS: 'true' } });
  });
  after(async () => {
    await srv?.stop();
  });

  test('signInAnonymously() returns an anonymous session', async () => {
    const client = srv.client('anon');
    const d = authOk(await client.auth.signInAnonymously({ options: { data: { theme: 'dark' } } }));
    assert.ok(d.session, 'anonymous sign-in must return a session');
    assert.equal(d.user.is_anonymous, true);
    assert.match(d.user.id, UUID_RE);
    assert.ok(!d.user.email, `anonymous user has no email: ${JSON.stringify(d.user.email)}`);
    assertSubset(d.user.user_metadata, { theme: 'dark' });
    const c = decodeJwt(d.session.access_token);
    assert.equal(c.sub, d.user.id);
    assert.equal(c.is_anonymous, true);
    assert.equal(c.role, 'authenticated');
    assert.equal(c.aud, 'authenticated');
    assert.equal(c.aal, 'aal1');
    assert.ok(Array.isArray(c.amr) && c.amr.length >= 1);
    assert.equal(c.amr[0].method, 'anonymous');
    assertRecent(c.amr[0].timestamp, 'amr timestamp');
    assert.equal(c.exp - c.iat, 3600, 'default OUTPOST_AUTH_JWT_EXPIRY is 3600');

    const g = authOk(await client.auth.getUser());
    assert.equal(g.user.id, d.user.id);
    assert.equal(g.user.is_anonymous, true);

    // Refresh keeps it anonymous.
    const r = authOk(await client.auth.refreshSession());
    assert.equal(decodeJwt(r.session.access_token).is_anonymous, true);

    // Two anonymous sign-ins are two users.
    const d2 = authOk(await srv.client('anon').auth.signInAnonymously());
    assert.notEqual(d2.user.id, d.user.id);
  });

  test('settings report anonymous_users: true; password users are not anonymous', async () => {
    const res = await authFetch(srv, '/settings', { auth: false });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.external?.anonymous_users, true, res.text);
    const { session, user } = await signUpUser(srv, { password: 'abcdef' }); // default policy: 6 chars
    assert.equal(user.is_anonymous, false);
    assert.equal(decodeJwt(session.access_token).is_anonymous, false);
  });
});

describe('auth: sign-in rate limit (3 per window)', () => {
  let srv;
  let email;
  before(async () => {
    srv = await startServer({ env: { OUTPOST_AUTH_RATE_LIMIT_SIGNIN: '3' } });
    email = uniqueEmail('limited');
    const created = await srv.client('service').auth.admin.createUser({
      email,
      password: GOOD_PASSWORD,
      email_confirm: true,
    });
    authOk(created, '(admin createUser on the rate-limited server)');
  });
  after(async () => {
    await srv?.stop();
  });

  test('the 4th sign-in attempt for one email gets 429 over_request_rate_limit', async () => {
    authOk(await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD }), '(attempt 1)');
    authFails(
      await srv.client('anon').auth.signInWithPassword({ email, password: 'Wr0ngPassword' }),
      400,
      'invalid_credentials',
      '(attempt 2)',
    );
    authOk(await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD }), '(attempt 3)');
    const fourth = await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD });
    authFails(fourth, 429, 'over_request_rate_limit', '(attempt 4)');
    assert.equal(fourth.data.session, null);

    const raw = await authFetch(srv, '/token?grant_type=password', {
      method: 'POST',
      body: { email, password: GOOD_PASSWORD, gotrue_meta_security: {} },
    });
    assertAuthError(raw, 429, 'over_request_rate_limit');
  });

  test('the limit also counts per IP: another email from the same address is limited', async () => {
    const res = await srv.client('anon').auth.signInWithPassword({
      email: uniqueEmail('other'),
      password: GOOD_PASSWORD,
    });
    authFails(res, 429, 'over_request_rate_limit');
  });
});

describe('auth: sign-up disabled', () => {
  let srv;
  before(async () => {
    srv = await startServer({ env: { ...HIGH_RATE_LIMITS, OUTPOST_AUTH_DISABLE_SIGNUP: 'true' } });
  });
  after(async () => {
    await srv?.stop();
  });

  test('signUp answers 422 signup_disabled and creates nobody', async () => {
    const email = uniqueEmail('nosignup');
    const res = await srv.client('anon').auth.signUp({ email, password: GOOD_PASSWORD });
    authFails(res, 422, 'signup_disabled');
    assert.equal(res.data.session, null);
    authFails(await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD }), 400, 'invalid_credentials');
    const settings = await authFetch(srv, '/settings', { auth: false });
    assert.equal(settings.status, 200, settings.text);
    assert.equal(settings.json.disable_signup, true);
  });

  test('the admin API still creates users, and they can sign in', async () => {
    const email = uniqueEmail('adminmade');
    const d = authOk(
      await srv.client('service').auth.admin.createUser({ email, password: GOOD_PASSWORD, email_confirm: true }),
    );
    assert.equal(d.user.email, email);
    const s = await signInUser(srv, email, GOOD_PASSWORD);
    assert.equal(s.user.id, d.user.id);
  });
});

// Auth admin API (/auth/v1/admin/*, /invite) with the real supabase-js client and the
// service_role key: createUser (confirmed, unconfirmed, bcrypt password_hash), listUsers
// pagination (x-total-count, link), getUserById, updateUserById (metadata, email, password, bans),
// deleteUser, generateLink (magiclink, recovery, invite) + verifyOtp, inviteUserByEmail without
// SMTP, admin MFA factor listing/deletion, and the not_admin guard.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, decodeJwt } from '../lib/server.js';
import { totp } from '../lib/totp.js';
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
  refreshRaw,
  signInUser,
  uniqueEmail,
} from '../lib/authutil.js';

// bcrypt (cost 10) of 'hunter2hunter2', generated once with libxcrypt ($2b$) — the $2a$ form
// is the same hash under the older prefix.
const BCRYPT_PASSWORD = 'hunter2hunter2';
const BCRYPT_2A = '$2a$10$62y3arx3wp285KcwlSo0Su2YoUpe0OEIik8gFyksA5Y.PHAcjQNR.';
const BCRYPT_2B = '$2b$10$62y3arx3wp285KcwlSo0Su2YoUpe0OEIik8gFyksA5Y.PHAcjQNR.';

const RANDOM_UUID = '0b9f8e7d-6c5b-4a39-8281-7f6e5d4c3b2a';

describe('auth admin API', () => {
  let srv;
  let admin; // srv.client('service').auth.admin

  before(async () => {
    srv = await startServer({ env: { ...HIGH_RATE_LIMITS } });
    admin = srv.client('service').auth.admin;
  });
  after(async () => {
    await srv?.stop();
  });

  async function createConfirmed(extra = {}) {
    const email = extra.email ?? uniqueEmail('adm');
    const d = authOk(
      await admin.createUser({ email, password: GOOD_PASSWORD, email_confirm: true, ...extra }),
      `(createUser ${email})`,
    );
    return { email, user: d.user };
  }

  // ---------------------------------------------------------------- createUser

  test('createUser({email, password, email_confirm, user_metadata, app_metadata}) and sign in', async () => {
    const email = uniqueEmail('create');
    const d = authOk(
      await admin.createUser({
        email,
        password: GOOD_PASSWORD,
        email_confirm: true,
        user_metadata: { name: 'Linus', langs: ['c'] },
        app_metadata: { plan: 'pro', roles: ['editor'] },
      }),
    );
    const u = d.user;
    assert.match(u.id, UUID_RE);
    assert.equal(u.email, email);
    assert.equal(u.aud, 'authenticated');
    assert.equal(u.role, 'authenticated');
    assert.ok(u.email_confirmed_at, `email_confirm: true must confirm: ${JSON.stringify(u)}`);
    assertSubset(u.user_metadata, { name: 'Linus', langs: ['c'] }, 'user_metadata');
    assertSubset(u.app_metadata, { provider: 'email', providers: ['email'], plan: 'pro', roles: ['editor'] }, 'app_metadata');
    assert.ok(Array.isArray(u.identities) && u.identities.some((i) => i.provider === 'email'), JSON.stringify(u.identities));

    const s = await signInUser(srv, email, GOOD_PASSWORD);
    assert.equal(s.user.id, u.id);
    const c = decodeJwt(s.session.access_token);
    assert.equal(c.sub, u.id);
    assertSubset(c.app_metadata, { provider: 'email', plan: 'pro', roles: ['editor'] }, 'app_metadata claim');
    assertSubset(c.user_metadata, { name: 'Linus' }, 'user_metadata claim');
  });

  test('createUser with a taken email answers 422 email_exists', async () => {
    const { email } = await createConfirmed();
    const res = await admin.createUser({ email, password: GOOD_PASSWORD, email_confirm: true });
    authFails(res, 422, 'email_exists');
    assert.equal(res.data.user, null);
  });

  test('createUser without email_confirm (no SMTP) leaves the user unconfirmed: 400 email_not_confirmed', async () => {
    const email = uniqueEmail('unconfirmed');
    const d = authOk(await admin.createUser({ email, password: GOOD_PASSWORD }));
    assert.ok(!d.user.email_confirmed_at, `must be unconfirmed: ${JSON.stringify(d.user)}`);
    const res = await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD });
    authFails(res, 400, 'email_not_confirmed');
    assert.equal(res.data.session, null);

    // Confirming through the admin API lets the user in.
    const upd = authOk(await admin.updateUserById(d.user.id, { email_confirm: true }));
    assert.ok(upd.user.email_confirmed_at, JSON.stringify(upd.user));
    await signInUser(srv, email, GOOD_PASSWORD);
  });

  test('createUser({password_hash}) accepts a bcrypt hash ($2a$ and $2b$)', async () => {
    for (const hash of [BCRYPT_2A, BCRYPT_2B]) {
      const email = uniqueEmail('bcrypt');
      const d = authOk(await admin.createUser({ email, password_hash: hash, email_confirm: true }), `(hash ${hash})`);
      authFails(
        await srv.client('anon').auth.signInWithPassword({ email, password: 'hunter2' }),
        400,
        'invalid_credentials',
        `(wrong password, ${hash.slice(0, 4)})`,
      );
      const s1 = await signInUser(srv, email, BCRYPT_PASSWORD);
      assert.equal(s1.user.id, d.user.id);
      // Still there, and (after any transparent rehash) the password keeps working.
      const g = authOk(await admin.getUserById(d.user.id));
      assert.equal(g.user.email, email);
      const s2 = await signInUser(srv, email, BCRYPT_PASSWORD);
      assert.equal(s2.user.id, d.user.id);
      authFails(
        await srv.client('anon').auth.signInWithPassword({ email, password: 'hunter2hunter3' }),
        400,
        'invalid_credentials',
      );
    }
  });

  test('createUser with a malformed password_hash is refused', async () => {
    const email = uniqueEmail('badhash');
    const res = await admin.createUser({ email, password_hash: 'not-a-hash', email_confirm: true });
    assert.ok(res.error, `a malformed hash must be refused: ${JSON.stringify(res.data)}`);
    // GoTrue itself answers 500 here; a client error (4xx) is what a caller can act on.
    assert.ok(res.error.status >= 400 && res.error.status < 500, `expected a 4xx, got ${res.error.status} ${res.error.message}`);
    // Nothing was created.
    const list = await authFetch(srv, '/admin/users?page=1&per_page=1000', { key: srv.serviceKey });
    assert.equal(list.status, 200, list.text);
    assert.ok(!list.json.users.some((u) => u.email === email), 'user must not exist');
  });

  // ---------------------------------------------------------------- get / update

  test('getUserById returns the user; an unknown id answers 404 user_not_found', async () => {
    const { email, user } = await createConfirmed({ user_metadata: { n: 1 } });
    const g = authOk(await admin.getUserById(user.id));
    assert.equal(g.user.id, user.id);
    assert.equal(g.user.email, email);
    assertSubset(g.user.user_metadata, { n: 1 });
    authFails(await admin.getUserById(RANDOM_UUID), 404, 'user_not_found');
  });

  test('updateUserById({user_metadata, app_metadata, email, password})', async () => {
    const { email, user } = await createConfirmed({ user_metadata: { name: 'Old', keep: true } });
    const newEmail = uniqueEmail('renamed');
    const NEW_PW = 'Adm1nSetPassword';
    const d = authOk(
      await admin.updateUserById(user.id, {
        user_metadata: { name: 'New', extra: 'x' },
        app_metadata: { tier: 'gold' },
        email: newEmail,
        password: NEW_PW,
      }),
    );
    assert.equal(d.user.id, user.id);
    assert.equal(d.user.email, newEmail);
    assertSubset(d.user.user_metadata, { name: 'New', extra: 'x', keep: true }, 'merged user_metadata');
    assertSubset(d.user.app_metadata, { provider: 'email', tier: 'gold' }, 'app_metadata');

    const s = await signInUser(srv, newEmail, NEW_PW);
    assert.equal(s.user.id, user.id);
    assert.equal(decodeJwt(s.session.access_token).email, newEmail);
    authFails(await srv.client('anon').auth.signInWithPassword({ email, password: NEW_PW }), 400, 'invalid_credentials', '(old email)');
    authFails(
      await srv.client('anon').auth.signInWithPassword({ email: newEmail, password: GOOD_PASSWORD }),
      400,
      'invalid_credentials',
      '(old password)',
    );

    const g = authOk(await admin.getUserById(user.id));
    assert.equal(g.user.email, newEmail);
    assertSubset(g.user.app_metadata, { tier: 'gold' });
  });

  test("updateUserById({ban_duration:'24h'}) bans: sign-in and refresh get 400 user_banned; 'none' unbans", async () => {
    const { email, user } = await createConfirmed();
    const s = await signInUser(srv, email, GOOD_PASSWORD);

    const d = authOk(await admin.updateUserById(user.id, { ban_duration: '24h' }));
    assert.ok(d.user.banned_until, `banned_until must be set: ${JSON.stringify(d.user)}`);
    const until = Date.parse(d.user.banned_until);
    assert.ok(!Number.isNaN(until), `banned_until must be a timestamp: ${d.user.banned_until}`);
    const expected = Date.now() + 24 * 3600 * 1000;
    assert.ok(Math.abs(until - expected) < 5 * 60 * 1000, `banned_until ${d.user.banned_until} is not ~24h ahead`);

    const res = await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD });
    authFails(res, 400, 'user_banned');
    assert.equal(res.data.session, null);
    // GoTrue keeps the sessions and answers user_banned ("Invalid Refresh Token: User Banned");
    // revoking the user's sessions at ban time (refresh_token_not_found) is as good for clients.
    const r = await refreshRaw(srv, s.session.refresh_token);
    assertAuthError(r, 400, ['user_banned', 'refresh_token_not_found'], {
      ctx: '(refresh of a session from before the ban)',
    });

    const un = authOk(await admin.updateUserById(user.id, { ban_duration: 'none' }));
    assert.ok(!un.user.banned_until, `banned_until must be cleared: ${JSON.stringify(un.user.banned_until)}`);
    await signInUser(srv, email, GOOD_PASSWORD);
  });

  test('an invalid ban_duration answers 400 validation_failed', async () => {
    const { user } = await createConfirmed();
    authFails(await admin.updateUserById(user.id, { ban_duration: 'forever-ish' }), 400, 'validation_failed');
    const g = authOk(await admin.getUserById(user.id));
    assert.ok(!g.user.banned_until, 'a refused ban must not ban');
  });

  // ---------------------------------------------------------------- delete

  test('deleteUser: the user is gone (404 user_not_found) and their refresh token fails', async () => {
    const { email, user } = await createConfirmed();
    const s = await signInUser(srv, email, GOOD_PASSWORD);

    const d = authOk(await admin.deleteUser(user.id));
    assert.equal(d.user.id, user.id);
    authFails(await admin.getUserById(user.id), 404, 'user_not_found');

    assertAuthError(await refreshRaw(srv, s.session.refresh_token), 400, 'refresh_token_not_found');
    assertAuthError(await getUserRaw(srv, s.session.access_token), 403, ['user_not_found', 'session_not_found']);
    authFails(await srv.client('anon').auth.signInWithPassword({ email, password: GOOD_PASSWORD }), 400, 'invalid_credentials');

    // The raw DELETE answers 404 now.
    const again = await authFetch(srv, `/admin/users/${user.id}`, { method: 'DELETE', key: srv.serviceKey, body: {} });
    assertAuthError(again, 404, 'user_not_found');

    // The address is free again.
    const re = authOk(await admin.createUser({ email, password: GOOD_PASSWORD, email_confirm: true }));
    assert.notEqual(re.user.id, user.id);
  });

  // ---------------------------------------------------------------- generateLink / invite

  test("generateLink({type:'magiclink'}) returns link, OTP and hash; verifyOtp with the OTP signs in once", async () => {
    const { email, user } = await createConfirmed();
    const d = authOk(await admin.generateLink({ type: 'magiclink', email }));
    const p = d.properties;
    assert.equal(typeof p.action_link, 'string');
    assert.ok(p.action_link.includes('/auth/v1/verify?token='), `action_link: ${p.action_link}`);
    const link = new URL(p.action_link);
    assert.equal(link.searchParams.get('token'), p.hashed_token, 'the link carries the hashed token');
    assert.equal(link.searchParams.get('type'), 'magiclink');
    assert.match(p.email_otp, /^\d{6}$/);
    assert.equal(typeof p.hashed_token, 'string');
    assert.ok(p.hashed_token.length >= 16, `hashed_token: ${p.hashed_token}`);
    assert.equal(p.verification_type, 'magiclink');
    assert.equal(d.user.id, user.id);
    assert.equal(d.user.email, email);

    const client = srv.client('anon');
    const v = authOk(await client.auth.verifyOtp({ email, token: p.email_otp, type: 'magiclink' }));
    assert.ok(v.session?.access_token, `verifyOtp must return a session: ${JSON.stringify(v)}`);
    assert.equal(v.user.id, user.id);
    const c = decodeJwt(v.session.access_token);
    assert.equal(c.sub, user.id);
    assert.ok(['otp', 'magiclink'].includes(c.amr?.[0]?.method), `amr: ${JSON.stringify(c.amr)}`);
    const me = authOk(await client.auth.getUser());
    assert.equal(me.user.id, user.id);

    // One use only.
    const reuse = await srv.client('anon').auth.verifyOtp({ email, token: p.email_otp, type: 'magiclink' });
    authFails(reuse, 403, 'otp_expired');
  });

  test('a wrong OTP answers 403 otp_expired; a newer link replaces the older one', async () => {
    const { email } = await createConfirmed();
    const first = authOk(await admin.generateLink({ type: 'magiclink', email })).properties;
    const wrong = first.email_otp === '000000' ? '111111' : '000000';
    authFails(await srv.client('anon').auth.verifyOtp({ email, token: wrong, type: 'magiclink' }), 403, 'otp_expired');
    const second = authOk(await admin.generateLink({ type: 'magiclink', email })).properties;
    assert.notEqual(second.hashed_token, first.hashed_token);
    authOk(await srv.client('anon').auth.verifyOtp({ token_hash: second.hashed_token, type: 'magiclink' }));
  });

  test("generateLink({type:'recovery'}) + verifyOtp({token_hash}) signs in; unknown email 404 user_not_found", async () => {
    const { email, user } = await createConfirmed();
    const d = authOk(await admin.generateLink({ type: 'recovery', email }));
    const p = d.properties;
    assert.ok(p.action_link.includes('/auth/v1/verify?token='), p.action_link);
    assert.equal(new URL(p.action_link).searchParams.get('type'), 'recovery');
    assert.match(p.email_otp, /^\d{6}$/);
    assert.equal(p.verification_type, 'recovery');
    assert.equal(d.user.id, user.id);

    const client = srv.client('anon');
    const v = authOk(await client.auth.verifyOtp({ token_hash: p.hashed_token, type: 'recovery' }));
    assert.ok(v.session?.access_token, JSON.stringify(v));
    assert.equal(v.user.id, user.id);
    assert.ok(['otp', 'recovery'].includes(decodeJwt(v.session.access_token).amr?.[0]?.method));
    // The recovered session may set a new password.
    authOk(await client.auth.updateUser({ password: 'Recovered1Pw' }));
    await signInUser(srv, email, 'Recovered1Pw');

    // Recovery OTP through the email + token form works too.
    const d2 = authOk(await admin.generateLink({ type: 'recovery', email })).properties;
    authOk(await srv.client('anon').auth.verifyOtp({ email, token: d2.email_otp, type: 'recovery' }));

    const unknown = await admin.generateLink({ type: 'recovery', email: uniqueEmail('ghost') });
    authFails(unknown, 404, 'user_not_found');
  });

  test('inviteUserByEmail without SMTP creates the invited user (200, invited_at) and sends nothing', async () => {
    const email = uniqueEmail('invitee');
    const d = authOk(await admin.inviteUserByEmail(email, { data: { invited_by: 'tests' } }));
    assert.match(d.user.id, UUID_RE);
    assert.equal(d.user.email, email);
    assert.ok(d.user.invited_at, `invited_at must be set: ${JSON.stringify(d.user)}`);
    assert.ok(!d.user.email_confirmed_at, 'an invited user is unconfirmed until they accept');
    assertSubset(d.user.user_metadata, { invited_by: 'tests' });
    const g = authOk(await admin.getUserById(d.user.id));
    assert.ok(g.user.invited_at);

    // Inviting a confirmed user's address fails.
    const { email: taken } = await createConfirmed();
    authFails(await admin.inviteUserByEmail(taken), 422, 'email_exists');
  });

  test("generateLink({type:'invite'}) creates the user; verifyOtp type 'invite' accepts the invitation", async () => {
    const email = uniqueEmail('linkinvite');
    const d = authOk(await admin.generateLink({ type: 'invite', email }));
    assert.equal(d.properties.verification_type, 'invite');
    assert.match(d.properties.email_otp, /^\d{6}$/);
    assert.ok(d.user.invited_at, JSON.stringify(d.user));
    const v = authOk(await srv.client('anon').auth.verifyOtp({ email, token: d.properties.email_otp, type: 'invite' }));
    assert.equal(v.user.id, d.user.id);
    assert.ok(v.user.email_confirmed_at, 'accepting an invitation confirms the email');
  });

  // ---------------------------------------------------------------- admin MFA

  test('admin.mfa.listFactors / deleteFactor', async () => {
    const { email, user } = await createConfirmed();
    const s = await signInUser(srv, email, GOOD_PASSWORD);
    const e = authOk(await s.client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'admin-test' }));
    const ch = authOk(await s.client.auth.mfa.challenge({ factorId: e.id }));
    authOk(await s.client.auth.mfa.verify({ factorId: e.id, challengeId: ch.id, code: totp(e.totp.secret) }));
    // A second, unverified factor.
    const e2 = authOk(await s.client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'second' }));

    const l = authOk(await admin.mfa.listFactors({ userId: user.id }));
    assert.ok(Array.isArray(l.factors), JSON.stringify(l));
    const byId = Object.fromEntries(l.factors.map((f) => [f.id, f]));
    assert.deepEqual(Object.keys(byId).sort(), [e.id, e2.id].sort());
    assert.equal(byId[e.id].status, 'verified');
    assert.equal(byId[e.id].factor_type, 'totp');
    assert.equal(byId[e.id].friendly_name, 'admin-test');
    assert.equal(byId[e2.id].status, 'unverified');
    assert.ok(!('secret' in byId[e.id]), 'factor listings must not leak the TOTP secret');

    const del = authOk(await admin.mfa.deleteFactor({ userId: user.id, id: e.id }));
    // auth-js 2.119 wraps the body once more here: data = {data: {id}, error: null}.
    assert.equal(del.data?.id ?? del.id, e.id, `deleteFactor answers the factor id: ${JSON.stringify(del)}`);
    const l2 = authOk(await admin.mfa.listFactors({ userId: user.id }));
    assert.deepEqual(l2.factors.map((f) => f.id), [e2.id]);

    authFails(await admin.mfa.deleteFactor({ userId: user.id, id: e.id }), 404, 'mfa_factor_not_found');
    const mine = authOk(await s.client.auth.mfa.listFactors());
    assert.deepEqual(mine.totp, [], 'the deleted verified factor is gone for the user too');
  });

  // ---------------------------------------------------------------- guard

  test('non-service tokens on /admin/* answer 403 not_admin', async () => {
    const { email } = await createConfirmed();
    const s = await signInUser(srv, email, GOOD_PASSWORD);

    authFails(await srv.client('anon').auth.admin.listUsers(), 403, 'not_admin', '(anon key)');
    const asUser = srv.client('anon', {
      global: { headers: { Authorization: `Bearer ${s.session.access_token}` } },
    }).auth.admin;
    authFails(await asUser.listUsers(), 403, 'not_admin', '(user token)');
    authFails(
      await asUser.createUser({ email: uniqueEmail('sneaky'), password: GOOD_PASSWORD, email_confirm: true }),
      403,
      'not_admin',
    );

    const raw = await authFetch(srv, '/admin/users', { token: s.session.access_token });
    assertAuthError(raw, 403, 'not_admin');
    const rawGen = await authFetch(srv, '/admin/generate_link', {
      method: 'POST',
      token: s.session.access_token,
      body: { type: 'magiclink', email },
    });
    assertAuthError(rawGen, 403, 'not_admin');
    const rawInvite = await authFetch(srv, '/invite', { method: 'POST', body: { email: uniqueEmail('x') } });
    assertAuthError(rawInvite, 403, 'not_admin', { ctx: '(anon key on /invite)' });
  });
});

describe('auth admin: listUsers pagination', () => {
  let srv;
  const ids = [];
  before(async () => {
    srv = await startServer({ env: { ...HIGH_RATE_LIMITS } });
    const admin = srv.client('service').auth.admin;
    for (let i = 0; i < 5; i++) {
      const d = authOk(
        await admin.createUser({ email: uniqueEmail(`page${i}`), password: GOOD_PASSWORD, email_confirm: true }),
      );
      ids.push(d.user.id);
    }
  });
  after(async () => {
    await srv?.stop();
  });

  test('listUsers({page:1, perPage:2}) with 5 users', async () => {
    const d = authOk(await srv.client('service').auth.admin.listUsers({ page: 1, perPage: 2 }));
    assert.equal(d.users.length, 2);
    assert.equal(d.total, 5, 'total from x-total-count');
    assert.equal(d.nextPage, 2, 'nextPage from link rel="next"');
    assert.equal(d.lastPage, 3, 'lastPage from link rel="last"');
    assert.equal(d.aud, 'authenticated');
    for (const u of d.users) assert.ok(ids.includes(u.id), `unexpected user ${u.id}`);
  });

  test('raw headers: x-total-count and link with rel="next" / rel="last"; pages cover every user once', async () => {
    const seen = [];
    for (const page of [1, 2, 3]) {
      const res = await authFetch(srv, `/admin/users?page=${page}&per_page=2`, { key: srv.serviceKey });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-total-count'), '5');
      const link = res.headers.get('link') ?? '';
      const rels = Object.fromEntries(
        link
          .split(',')
          .map((part) => /<([^>]*)>\s*;\s*rel="(\w+)"/.exec(part.trim()))
          .filter(Boolean)
          .map((m) => [m[2], m[1]]),
      );
      assert.ok(rels.last, `link must have rel="last" on page ${page}: ${link}`);
      const last = new URL(rels.last, srv.url);
      assert.equal(last.searchParams.get('page'), '3', link);
      assert.equal(last.searchParams.get('per_page'), '2', link);
      if (page < 3) {
        assert.ok(rels.next, `link must have rel="next" on page ${page}: ${link}`);
        const next = new URL(rels.next, srv.url);
        assert.equal(next.searchParams.get('page'), String(page + 1), link);
        assert.equal(next.searchParams.get('per_page'), '2', link);
      } else {
        assert.ok(!rels.next, `the last page has no rel="next": ${link}`);
      }
      assert.ok(Array.isArray(res.json.users), res.text);
      assert.equal(res.json.users.length, page < 3 ? 2 : 1, `page ${page}`);
      seen.push(...res.json.users.map((u) => u.id));
    }
    assert.deepEqual([...seen].sort(), [...ids].sort(), 'pages must cover every user exactly once');

    const beyond = await authFetch(srv, '/admin/users?page=4&per_page=2', { key: srv.serviceKey });
    assert.equal(beyond.status, 200, beyond.text);
    assert.deepEqual(beyond.json.users, []);
  });

  test('listUsers() without arguments (the client sends page=&per_page=) lists everyone', async () => {
    const all = authOk(await srv.client('service').auth.admin.listUsers());
    assert.equal(all.users.length, 5);
    assert.deepEqual(all.users.map((u) => u.id).sort(), [...ids].sort());
    const raw = await authFetch(srv, '/admin/users', { key: srv.serviceKey });
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.json.users.length, 5);
    assert.equal(raw.headers.get('x-total-count'), '5');
  });
});

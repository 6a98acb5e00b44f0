// Auth MFA (TOTP) with the real supabase-js client: enroll (QR SVG, base32 secret, otpauth URI),
// listFactors, challenge, verify with codes from lib/totp.js (aal2 tokens, amr totp),
// getAuthenticatorAssuranceLevel, wrong codes, a policy on auth.jwt()->>'aal', and the AAL rules
// for enrolling and unenrolling.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, decodeJwt } from '../lib/server.js';
import { ok } from '../lib/assert.js';
import { totp, freshTotp, base32Decode, base32Encode } from '../lib/totp.js';
import {
  HIGH_RATE_LIMITS,
  UUID_RE,
  assertAuthError,
  authFails,
  authFetch,
  authOk,
  nowSec,
  signInUser,
  signUpUser,
} from '../lib/authutil.js';

const SCHEMA = `
CREATE TABLE secrets (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON secrets FOR SELECT TO authenticated USING ((auth.jwt()->>'aal') = 'aal2');
`;
const SEED = `INSERT INTO secrets (id, body) VALUES (1, 'launch codes');`;

test('lib/totp.js matches the RFC 6238 SHA-1 test vectors', () => {
  const secret = base32Encode(Buffer.from('12345678901234567890'));
  assert.equal(secret, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(base32Decode(secret).toString(), '12345678901234567890');
  assert.equal(totp(secret, { time: 59, digits: 8 }), '94287082');
  assert.equal(totp(secret, { time: 1111111109, digits: 8 }), '07081804');
  assert.equal(totp(secret, { time: 1234567890, digits: 8 }), '89005924');
  assert.equal(totp(secret, { time: 20000000000, digits: 8 }), '65353130');
  assert.match(totp(secret), /^\d{6}$/);
});

/** A code that is certainly wrong for the current window (never equal to any nearby step). */
function wrongCode(secret) {
  const near = new Set([-1, 0, 1].map((d) => totp(secret, { time: Date.now() / 1000 + d * 30 })));
  for (let n = 0; ; n++) {
    const c = String((Number(totp(secret)) + 123457 + n) % 1_000_000).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

describe('auth MFA (TOTP)', () => {
  let srv;

  before(async () => {
    srv = await startServer({
      migrations: { '0001_secrets.sql': SCHEMA, '0002_seed.sql': SEED },
      env: { ...HIGH_RATE_LIMITS },
    });
  });
  after(async () => {
    await srv?.stop();
  });

  /** Sign up, enroll a TOTP factor, verify it. Returns {client, email, password, factorId, secret, session}. */
  async function userWithVerifiedFactor(friendlyName = 'phone') {
    const u = await signUpUser(srv);
    const e = authOk(await u.client.auth.mfa.enroll({ factorType: 'totp', friendlyName }));
    const ch = authOk(await u.client.auth.mfa.challenge({ factorId: e.id }));
    const v = authOk(
      await u.client.auth.mfa.verify({ factorId: e.id, challengeId: ch.id, code: await freshTotp(e.totp.secret) }),
    );
    return { ...u, factorId: e.id, secret: e.totp.secret, session: v };
  }

  test('enroll TOTP: QR SVG data URL, base32 secret, otpauth URI; listed as unverified', async () => {
    const { client, email } = await signUpUser(srv);
    const d = authOk(await client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'My phone' }));
    assert.match(d.id, UUID_RE);
    assert.equal(d.type, 'totp');
    assert.equal(d.friendly_name, 'My phone');
    assert.ok(d.totp.qr_code.startsWith('data:image/svg+xml'), `qr_code: ${d.totp.qr_code.slice(0, 60)}`);
    assert.ok(d.totp.qr_code.includes('<svg'), 'the server sends raw SVG (the client adds the data: prefix)');
    assert.match(d.totp.secret, /^[A-Z2-7]+=*$/, `secret must be base32: ${d.totp.secret}`);
    assert.ok(base32Decode(d.totp.secret).length >= 10, 'secret must carry at least 80 bits');
    assert.ok(d.totp.uri.startsWith('otpauth://totp/'), `uri: ${d.totp.uri}`);
    const uri = new URL(d.totp.uri);
    assert.equal(uri.searchParams.get('secret'), d.totp.secret, 'the URI carries the same secret');
    assert.ok(decodeURIComponent(d.totp.uri).includes(email), `the URI names the account: ${d.totp.uri}`);

    const l = authOk(await client.auth.mfa.listFactors());
    assert.equal(l.all.length, 1, JSON.stringify(l));
    assert.equal(l.all[0].id, d.id);
    assert.equal(l.all[0].status, 'unverified');
    assert.equal(l.all[0].factor_type, 'totp');
    assert.equal(l.all[0].friendly_name, 'My phone');
    assert.ok(l.all[0].created_at && l.all[0].updated_at);
    assert.deepEqual(l.totp, [], 'listFactors().totp holds verified factors only');
    assert.ok(!('secret' in l.all[0]), 'the user object must not leak the secret');

    // An unverified factor does not raise the next level.
    const aal = authOk(await client.auth.mfa.getAuthenticatorAssuranceLevel());
    assert.equal(aal.currentLevel, 'aal1');
    assert.equal(aal.nextLevel, 'aal1');
  });

  test('challenge + verify with a TOTP code gives an aal2 session (amr totp)', async () => {
    const { client, session: s1, user } = await signUpUser(srv);
    const e = authOk(await client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'authenticator' }));

    const ch = authOk(await client.auth.mfa.challenge({ factorId: e.id }));
    assert.match(ch.id, UUID_RE);
    assert.equal(typeof ch.expires_at, 'number', JSON.stringify(ch));
    assert.ok(ch.expires_at > nowSec(), `expires_at ${ch.expires_at} must be in the future`);
    assert.ok(ch.expires_at < nowSec() + 24 * 3600, `expires_at ${ch.expires_at} is implausibly far`);

    const v = authOk(
      await client.auth.mfa.verify({ factorId: e.id, challengeId: ch.id, code: await freshTotp(e.totp.secret) }),
    );
    assert.equal(typeof v.access_token, 'string');
    assert.equal(typeof v.refresh_token, 'string');
    assert.equal(v.token_type, 'bearer');
    assert.ok(v.expires_in > 0);
    assert.equal(v.user.id, user.id);
    const c = decodeJwt(v.access_token);
    assert.equal(c.sub, user.id);
    assert.equal(c.aal, 'aal2');
    const methods = (c.amr ?? []).map((a) => a.method);
    assert.ok(methods.includes('totp'), `amr must include totp: ${JSON.stringify(c.amr)}`);
    assert.ok(methods.includes('password'), `amr keeps the password sign-in: ${JSON.stringify(c.amr)}`);
    assert.equal(c.session_id, decodeJwt(s1.access_token).session_id, 'verify upgrades the same session');

    const aal = authOk(await client.auth.mfa.getAuthenticatorAssuranceLevel());
    assert.equal(aal.currentLevel, 'aal2');
    assert.equal(aal.nextLevel, 'aal2');
    assert.ok(aal.currentAuthenticationMethods.some((m) => m.method === 'totp'));

    const l = authOk(await client.auth.mfa.listFactors());
    assert.equal(l.totp.length, 1);
    assert.equal(l.totp[0].id, e.id);
    assert.equal(l.totp[0].status, 'verified');

    // A refresh keeps the session at aal2.
    const r = authOk(await client.auth.refreshSession());
    assert.equal(decodeJwt(r.session.access_token).aal, 'aal2');
    // The challenge is used up.
    const again = await client.auth.mfa.verify({ factorId: e.id, challengeId: ch.id, code: totp(e.totp.secret) });
    assert.ok(again.error, 'a verified challenge cannot be verified again');
    assert.ok([400, 404, 422].includes(again.error.status), `status ${again.error.status} ${again.error.code}`);
  });

  test('a wrong code answers 422 mfa_verification_failed and leaves the session at aal1', async () => {
    const { client, session } = await signUpUser(srv);
    const e = authOk(await client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'wrong' }));
    const ch = authOk(await client.auth.mfa.challenge({ factorId: e.id }));
    const res = await client.auth.mfa.verify({ factorId: e.id, challengeId: ch.id, code: wrongCode(e.totp.secret) });
    authFails(res, 422, 'mfa_verification_failed');
    assert.equal(res.data, null);
    const stored = authOk(await client.auth.getSession()).session;
    assert.equal(decodeJwt(stored.access_token).aal, 'aal1');
    assert.equal(stored.access_token, session.access_token);
    const l = authOk(await client.auth.mfa.listFactors());
    assert.equal(l.all[0].status, 'unverified', 'a failed verification does not verify the factor');

    // Raw shape.
    const ch2 = authOk(await client.auth.mfa.challenge({ factorId: e.id }));
    const raw = await authFetch(srv, `/factors/${e.id}/verify`, {
      method: 'POST',
      token: session.access_token,
      body: { challenge_id: ch2.id, code: wrongCode(e.totp.secret) },
    });
    assertAuthError(raw, 422, 'mfa_verification_failed');
  });

  test('challenge for an unknown factor answers 404 mfa_factor_not_found', async () => {
    const { client } = await signUpUser(srv);
    const res = await client.auth.mfa.challenge({ factorId: '0b9f8e7d-6c5b-4a39-8281-7f6e5d4c3b2a' });
    authFails(res, 404, 'mfa_factor_not_found');
  });

  test("another user's factor is not reachable", async () => {
    const owner = await userWithVerifiedFactor('owned');
    const intruder = await signUpUser(srv);
    const res = await intruder.client.auth.mfa.challenge({ factorId: owner.factorId });
    authFails(res, 404, 'mfa_factor_not_found');
    const del = await intruder.client.auth.mfa.unenroll({ factorId: owner.factorId });
    authFails(del, 404, 'mfa_factor_not_found');
  });

  test('a new password sign-in is aal1 with nextLevel aal2, and can step up', async () => {
    const { email, password, factorId, secret } = await userWithVerifiedFactor();
    const s = await signInUser(srv, email, password);
    assert.equal(decodeJwt(s.session.access_token).aal, 'aal1');
    assert.ok(
      (s.user.factors ?? []).some((f) => f.id === factorId && f.status === 'verified'),
      `the sign-in response user lists its verified factor: ${JSON.stringify(s.user.factors)}`,
    );
    const aal = authOk(await s.client.auth.mfa.getAuthenticatorAssuranceLevel());
    assert.equal(aal.currentLevel, 'aal1');
    assert.equal(aal.nextLevel, 'aal2');
    assert.deepEqual(
      aal.currentAuthenticationMethods.map((m) => m.method),
      ['password'],
    );

    const v = authOk(await s.client.auth.mfa.challengeAndVerify({ factorId, code: await freshTotp(secret) }));
    assert.equal(decodeJwt(v.access_token).aal, 'aal2');
    const aal2 = authOk(await s.client.auth.mfa.getAuthenticatorAssuranceLevel());
    assert.equal(aal2.currentLevel, 'aal2');
  });

  test("a policy on auth.jwt()->>'aal' hides rows from aal1 and shows them to aal2", async () => {
    const { email, password, client: aal2Client, factorId, secret } = await userWithVerifiedFactor();
    const stored = authOk(await aal2Client.auth.getSession()).session;
    assert.equal(decodeJwt(stored.access_token).aal, 'aal2');
    assert.deepEqual(ok(await aal2Client.from('secrets').select('id, body')), [{ id: 1, body: 'launch codes' }]);

    const s = await signInUser(srv, email, password);
    assert.deepEqual(ok(await s.client.from('secrets').select('id, body')), [], 'aal1 must see nothing');
    const counted = await s.client.from('secrets').select('*', { count: 'exact', head: true });
    assert.equal(counted.count, 0);

    // Stepping up in that session reveals the row.
    authOk(await s.client.auth.mfa.challengeAndVerify({ factorId, code: await freshTotp(secret) }));
    assert.deepEqual(ok(await s.client.from('secrets').select('id, body')), [{ id: 1, body: 'launch codes' }]);

    // A user without MFA never gets there.
    const plain = await signUpUser(srv);
    assert.deepEqual(ok(await plain.client.from('secrets').select('id')), []);
  });

  test('unenroll a verified factor: refused at aal1 (insufficient_aal), allowed at aal2', async () => {
    const { email, password, client: aal2Client, factorId } = await userWithVerifiedFactor();
    const s = await signInUser(srv, email, password);

    const refused = await s.client.auth.mfa.unenroll({ factorId });
    authFails(refused, [403, 422], 'insufficient_aal');
    const still = authOk(await s.client.auth.mfa.listFactors());
    assert.equal(still.totp.length, 1, 'the factor must survive a refused unenroll');

    const done = authOk(await aal2Client.auth.mfa.unenroll({ factorId }));
    assert.equal(done.id, factorId);
    const after1 = authOk(await aal2Client.auth.mfa.listFactors());
    assert.deepEqual(after1.all, []);

    // Without the factor, the session is downgraded to aal1 at the next refresh.
    const r = authOk(await aal2Client.auth.refreshSession());
    assert.equal(decodeJwt(r.session.access_token).aal, 'aal1');
    // And a fresh sign-in no longer asks for aal2.
    const s2 = await signInUser(srv, email, password);
    const aal = authOk(await s2.client.auth.mfa.getAuthenticatorAssuranceLevel());
    assert.equal(aal.nextLevel, 'aal1');
  });

  test('an unverified factor can be unenrolled at aal1', async () => {
    const { client } = await signUpUser(srv);
    const e = authOk(await client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'abandoned' }));
    const d = authOk(await client.auth.mfa.unenroll({ factorId: e.id }));
    assert.equal(d.id, e.id);
    assert.deepEqual(authOk(await client.auth.mfa.listFactors()).all, []);
  });

  test('enrolling another factor needs aal2 once one is verified; friendly names are unique', async () => {
    const { email, password, client: aal2Client } = await userWithVerifiedFactor('first');
    const s = await signInUser(srv, email, password);
    authFails(
      await s.client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'second' }),
      403,
      'insufficient_aal',
    );
    authFails(
      await aal2Client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'first' }),
      422,
      'mfa_factor_name_conflict',
    );
    const e2 = authOk(await aal2Client.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'second' }));
    assert.match(e2.id, UUID_RE);
  });

  test('MFA endpoints need a user token', async () => {
    const res = await authFetch(srv, '/factors', { method: 'POST', body: { factor_type: 'totp', friendly_name: 'x' } });
    assertAuthError(res, [401, 403], ['no_authorization', 'bad_jwt']);
  });
});

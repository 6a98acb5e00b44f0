// Roles and JWT checks, and the PostgREST error codes / statuses for bad requests.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, signJwt, rest } from '../lib/server.js';
import { BLOG_MIGRATIONS } from '../lib/fixtures.js';
import { ok, fails, show, assertErrorShape } from '../lib/assert.js';

let srv;
let db;

before(async () => {
  srv = await startServer({ migrations: BLOG_MIGRATIONS });
  db = srv.client('service');
});
after(async () => {
  await srv?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

function userJwt() {
  return srv.mintJwt({
    role: 'authenticated',
    aud: 'authenticated',
    sub: '11111111-2222-4333-8444-555555555555',
    email: 'user@example.com',
    session_id: '99999999-2222-4333-8444-555555555555',
    aal: 'aal1',
    amr: [{ method: 'password', timestamp: now() }],
    is_anonymous: false,
  });
}

/** A client that sends apikey=anon and Authorization=Bearer <token> (as supabase-js does with a session). */
function clientWithToken(token) {
  return srv.client('anon', { global: { headers: { Authorization: `Bearer ${token}` } } });
}

describe('roles: RLS is on by default; without a policy anon and authenticated see and change nothing', () => {
  const AUTHORS = [
    { id: 1, name: 'Ada' },
    { id: 2, name: 'Brian' },
    { id: 3, name: 'Chen' },
  ];
  const authorsUnchanged = async () =>
    assert.deepEqual(ok(await db.from('authors').select('id,name').order('id')), AUTHORS);

  test('service_role reads (bypasses RLS)', async () => {
    const data = ok(await db.from('authors').select('id').order('id'), 200);
    assert.deepEqual(data, [{ id: 1 }, { id: 2 }, { id: 3 }]);
  });

  test('anon select is 200 with [] on every table', async () => {
    const anon = srv.client('anon');
    for (const t of ['authors', 'posts', 'comments', 'messages']) {
      assert.deepEqual(ok(await anon.from(t).select('*'), 200), [], t);
    }
    // filters cannot reach hidden rows either
    assert.deepEqual(ok(await anon.from('posts').select('id').or('id.eq.1,id.gt.0'), 200), []);
    assert.deepEqual(ok(await anon.from('authors').select('id,posts(id)').eq('id', 1), 200), []);
  });

  test('anon insert fails 42501 / 401 and writes nothing', async () => {
    const anon = srv.client('anon');
    const e = fails(await anon.from('authors').insert({ name: 'Mallory' }), 401, '42501');
    assertErrorShape(e);
    fails(await anon.from('authors').insert({ name: 'Mallory' }).select(), 401, '42501');
    fails(await anon.from('authors').insert([{ name: 'M1' }, { name: 'M2' }]), 401, '42501');
    fails(await anon.from('authors').upsert({ id: 1, name: 'Mallory' }), 401, '42501');
    fails(await anon.from('authors').upsert({ id: 9, name: 'Mallory' }), 401, '42501');
    await authorsUnchanged();
  });

  test('anon update and delete change nothing (204, or 200 [] with select, count 0)', async () => {
    const anon = srv.client('anon');
    const u = await anon.from('authors').update({ name: 'Mallory' }).eq('id', 1);
    assert.equal(u.error, null, show(u));
    assert.equal(u.status, 204, show(u));
    const u2 = await anon.from('authors').update({ name: 'Mallory' }, { count: 'exact' }).gte('id', 1).select('id');
    assert.deepEqual(ok(u2, 200), []);
    assert.equal(u2.count, 0, show(u2));
    const d = await anon.from('authors').delete().eq('id', 1);
    assert.equal(d.error, null, show(d));
    assert.equal(d.status, 204, show(d));
    const d2 = await anon.from('authors').delete({ count: 'exact' }).gte('id', 1).select('id');
    assert.deepEqual(ok(d2, 200), []);
    assert.equal(d2.count, 0, show(d2));
    await authorsUnchanged();
  });

  test('anon head/count requests answer 200 with count 0', async () => {
    const anon = srv.client('anon');
    const res = await anon.from('posts').select('*', { count: 'exact', head: true });
    assert.equal(res.error, null, show(res));
    assert.equal(res.status, 200, show(res));
    assert.equal(res.count, 0, show(res));
    assert.equal(res.data, null, show(res));
    const r = await rest(srv, '/posts?select=id', { key: srv.anonKey, headers: { Prefer: 'count=exact' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, []);
    assert.equal(r.headers.get('content-range'), '*/0');
  });

  test('single() as anon on a hidden row is PGRST116 / 406 (0 rows)', async () => {
    const res = await srv.client('anon').from('posts').select('id').eq('id', 1).single();
    const e = fails(res, 406, 'PGRST116');
    assert.equal(e.details, 'The result contains 0 rows');
  });

  test('authenticated user: select [] / count 0, insert 42501 / 403, update and delete change nothing', async () => {
    const user = clientWithToken(userJwt());
    assert.deepEqual(ok(await user.from('posts').select('id'), 200), []);
    const c = await user.from('authors').select('*', { count: 'exact', head: true });
    assert.equal(c.status, 200, show(c));
    assert.equal(c.count, 0, show(c));
    const e = fails(await user.from('authors').insert({ name: 'Mallory' }), 403, '42501');
    assertErrorShape(e);
    fails(await user.from('authors').insert({ name: 'Mallory' }).select('id'), 403, '42501');
    fails(await user.from('authors').upsert({ id: 1, name: 'Mallory' }), 403, '42501');
    assert.deepEqual(ok(await user.from('authors').update({ name: 'Mallory' }).eq('id', 1).select('id'), 200), []);
    const u = await user.from('authors').update({ name: 'Mallory' }).eq('id', 1);
    assert.equal(u.status, 204, show(u));
    assert.deepEqual(ok(await user.from('authors').delete().eq('id', 1).select('id'), 200), []);
    const d = await user.from('comments').delete().gte('id', 0);
    assert.equal(d.status, 204, show(d));
    await authorsUnchanged();
    assert.equal(ok(await db.from('comments').select('id')).length, 5);
  });

  test('the role comes from Authorization, not apikey: apikey=anon + Bearer service_role reads', async () => {
    const data = ok(await clientWithToken(srv.serviceKey).from('authors').select('id').eq('id', 2), 200);
    assert.deepEqual(data, [{ id: 2 }]);
  });

  test('apikey=service_role + Bearer anon is anon: sees nothing', async () => {
    const c = srv.client('service', { global: { headers: { Authorization: `Bearer ${srv.anonKey}` } } });
    assert.deepEqual(ok(await c.from('authors').select('id'), 200), []);
  });

  test('unknown table for anon is PGRST205 / 404, and leaks no data', async () => {
    const res = await srv.client('anon').from('no_such_table').select('*');
    fails(res, 404, 'PGRST205');
  });
});

describe('JWT validation', () => {
  test('missing apikey and Authorization is 401', async () => {
    const res = await fetch(`${srv.restUrl}/posts?select=id`);
    const text = await res.text();
    assert.equal(res.status, 401, text);
    assert.doesNotMatch(text, /Hello World/);
  });

  test('bad signature is PGRST301 / 401', async () => {
    const forged = signJwt({ role: 'service_role', iss: 'outpost', iat: now(), exp: now() + 3600 }, 'x'.repeat(40));
    const e = fails(await srv.client(forged).from('posts').select('id'), 401, 'PGRST301');
    assertErrorShape(e);
    fails(await clientWithToken(forged).from('posts').select('id'), 401, 'PGRST301');
  });

  test('a token that is not a JWT is PGRST301 / 401', async () => {
    fails(await srv.client('not-a-jwt').from('posts').select('id'), 401, 'PGRST301');
    fails(await clientWithToken('a.b.c').from('posts').select('id'), 401, 'PGRST301');
  });

  test('alg "none" is rejected (401), never trusted', async () => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ role: 'service_role', iss: 'outpost', iat: now(), exp: now() + 3600 })}.`;
    const res = await srv.client(unsigned).from('posts').select('id');
    assert.equal(res.status, 401, show(res));
    assert.equal(res.data, null);
  });

  test('HS512 signed with the right secret but unexpected alg is not accepted as service_role', async () => {
    // Outpost keys are HS256; a server may accept or refuse other HMAC algs, but a refusal must be 401.
    const { createHmac } = await import('node:crypto');
    const h = Buffer.from(JSON.stringify({ alg: 'HS512', typ: 'JWT' })).toString('base64url');
    const p = Buffer.from(JSON.stringify({ role: 'service_role', iss: 'outpost', iat: now(), exp: now() + 3600 })).toString('base64url');
    const s = createHmac('sha512', srv.secret).update(`${h}.${p}`).digest('base64url');
    const res = await srv.client(`${h}.${p}.${s}`).from('authors').select('id').eq('id', 1);
    assert.ok(res.status === 200 || res.status === 401, show(res));
    if (res.status === 200) assert.deepEqual(res.data, [{ id: 1 }]);
  });

  test('expired token is PGRST303 / 401', async () => {
    const expired = srv.mintJwt({ role: 'service_role', iat: now() - 7200, exp: now() - 3600 });
    const e = fails(await srv.client(expired).from('posts').select('id'), 401, 'PGRST303');
    assertErrorShape(e);
  });

  test('an expired user token is PGRST303 / 401 even with a valid apikey', async () => {
    const expired = srv.mintJwt({ role: 'authenticated', aud: 'authenticated', sub: '11111111-2222-4333-8444-555555555555', iat: now() - 7200, exp: now() - 60 });
    fails(await clientWithToken(expired).from('posts').select('id'), 401, 'PGRST303');
  });

  test('the minted keys work: anon and service_role differ only by role claim', async () => {
    const anonKey = signJwt({ role: 'anon', iss: 'outpost', iat: now(), exp: now() + 600 }, srv.secret);
    // anon is a valid role: RLS hides every row (no policies), it is not refused
    assert.deepEqual(ok(await srv.client(anonKey).from('posts').select('id'), 200), []);
    const svc = signJwt({ role: 'service_role', iss: 'outpost', iat: now(), exp: now() + 600 }, srv.secret);
    assert.equal(ok(await srv.client(svc).from('posts').select('id')).length, 5);
  });
});

describe('PostgREST error codes', () => {
  test('unknown table is PGRST205 / 404', async () => {
    const e = fails(await db.from('no_such_table').select('*'), 404, 'PGRST205');
    assertErrorShape(e);
  });

  test('SQLite system tables are not exposed (PGRST205 / 404)', async () => {
    fails(await db.from('sqlite_master').select('*'), 404, 'PGRST205');
    fails(await db.from('sqlite_schema').select('*'), 404, 'PGRST205');
  });

  test('unknown column in select is 42703 / 400', async () => {
    const e = fails(await db.from('posts').select('id,nope'), 400, '42703');
    assertErrorShape(e);
  });

  test('unknown column in a filter is 42703 / 400', async () => {
    fails(await db.from('posts').select('id').eq('nope', 1), 400, '42703');
  });

  test('unknown column in order is 42703 / 400', async () => {
    fails(await db.from('posts').select('id').order('nope'), 400, '42703');
  });

  test('unknown column inside an embed is 42703 / 400', async () => {
    fails(await db.from('posts').select('id,authors(nope)'), 400, '42703');
  });

  test('unknown filter operator is PGRST100 / 400', async () => {
    const e = fails(await db.from('posts').select('id').filter('id', 'nope', '1'), 400, 'PGRST100');
    assertErrorShape(e);
  });

  test('malformed query strings are PGRST100 / 400', async () => {
    for (const qs of [
      '?select=id&order=id.sideways',
      '?select=id&or=(id.eq.1',
      '?select=id&id=in.1,2',
      '?select=id,authors(name',
      '?select=id&id=eq',
    ]) {
      const r = await rest(srv, `/posts${qs}`);
      assert.equal(r.status, 400, `${qs} -> ${r.status} ${r.text}`);
      assert.equal(r.json?.code, 'PGRST100', `${qs} -> ${r.text}`);
      assertErrorShape(r.json, qs);
    }
  });

  test('unknown relationship is PGRST200 / 400', async () => {
    const e = fails(await db.from('authors').select('id,unicorns(*)'), 400, 'PGRST200');
    assertErrorShape(e);
  });

  test('single() on 0 rows: PGRST116 / 406 with PostgREST message and details', async () => {
    const r = await rest(srv, '/posts?select=id&id=eq.999', {
      headers: { Accept: 'application/vnd.pgrst.object+json' },
    });
    assert.equal(r.status, 406, r.text);
    assert.equal(r.json.code, 'PGRST116');
    assertErrorShape(r.json);
    assert.equal(r.json.message, 'Cannot coerce the result to a single JSON object');
    assert.equal(r.json.details, 'The result contains 0 rows');
  });

  test('single() on many rows: details name the row count', async () => {
    const r = await rest(srv, '/posts?select=id', { headers: { Accept: 'application/vnd.pgrst.object+json' } });
    assert.equal(r.status, 406, r.text);
    assert.equal(r.json.code, 'PGRST116');
    assert.equal(r.json.details, 'The result contains 5 rows');
  });

  test('constraint errors carry the full error shape over the wire', async () => {
    const cases = [
      { body: { name: 'Ada' }, status: 409, code: '23505' }, // unique
      { body: { id: 50 }, status: 400, code: '23502' }, // not null
    ];
    for (const c of cases) {
      const r = await rest(srv, '/authors', { method: 'POST', body: c.body });
      assert.equal(r.status, c.status, r.text);
      assert.equal(r.json?.code, c.code, r.text);
      assertErrorShape(r.json, c.code);
      assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    }
    const fk = await rest(srv, '/posts', { method: 'POST', body: { title: 'x', author_id: 77 } });
    assert.equal(fk.status, 409, fk.text);
    assert.equal(fk.json?.code, '23503');
    assertErrorShape(fk.json, '23503');
    const ck = await rest(srv, '/posts', { method: 'POST', body: { title: '' } });
    assert.equal(ck.status, 400, ck.text);
    assert.equal(ck.json?.code, '23514');
    assertErrorShape(ck.json, '23514');
    const unk = await rest(srv, '/posts', { method: 'POST', body: { title: 'x', wat: 1 } });
    assert.equal(unk.status, 400, unk.text);
    assert.equal(unk.json?.code, 'PGRST204');
    assertErrorShape(unk.json, 'PGRST204');
    // none of the above wrote anything
    assert.deepEqual(ok(await db.from('posts').select('id').order('id')).map((p) => p.id), [1, 2, 3, 4, 5]);
    assert.equal(ok(await db.from('authors').select('id')).length, 3);
  });

  test('a schema other than public is PGRST106 / 406', async () => {
    const other = srv.client('service', { db: { schema: 'private' } });
    fails(await other.from('posts').select('id'), 406, 'PGRST106');
    fails(await other.from('posts').insert({ title: 'nope' }), 406, 'PGRST106');
    assert.deepEqual(ok(await db.from('posts').select('id').eq('title', 'nope')), []);
  });

  test('an unsupported Content-Type on a write is PGRST107 / 415', async () => {
    const r = await rest(srv, '/authors', {
      method: 'POST',
      headers: { 'Content-Type': 'application/xml' },
      body: '<author><name>X</name></author>',
    });
    assert.equal(r.status, 415, r.text);
    assert.equal(r.json?.code, 'PGRST107', r.text);
  });

  test('invalid JSON body is PGRST102 / 400', async () => {
    const r = await rest(srv, '/authors', { method: 'POST', body: '{"name": ' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json?.code, 'PGRST102', r.text);
    assertErrorShape(r.json);
  });

  test('errors are never 500 for bad input', async () => {
    for (const qs of [
      '?select=*&id=gt.abc',
      '?select=*&limit=-1',
      '?select=*&limit=abc',
      '?select=*&offset=-5',
      '?select=id::nonsense_type',
      '?select=meta->>',
      '?select=*&order=',
      '?select=id,,title',
      '?select=id&score=in.(1,,2)',
      '?select=id&meta=cs.{not json',
      '?select=id&title=match.(unclosed',
      '?select=id&or=()',
      '?select=posts(*)',
      '?select=id&id=eq.1&id=eq.2',
      `?select=id&title=eq.${'x'.repeat(5000)}`,
    ]) {
      const r = await rest(srv, `/posts${qs}`);
      assert.ok(r.status < 500, `${qs} -> ${r.status} ${r.text}`);
    }
  });
});

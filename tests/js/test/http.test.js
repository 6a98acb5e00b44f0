// Plain-HTTP checks: health, CORS, OpenAPI, Content-Range, Prefer handling, `outpost keys`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, rest, decodeJwt, OUTPOST_BIN } from '../lib/server.js';
import { BLOG_MIGRATIONS } from '../lib/fixtures.js';
import { ok } from '../lib/assert.js';

const run = promisify(execFile);

let srv;

before(async () => {
  srv = await startServer({ migrations: BLOG_MIGRATIONS });
});
after(async () => {
  await srv?.stop();
});

const ORIGIN = 'http://app.example.test';
const splitList = (v) => (v ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

test('GET /health answers 200 with JSON', async () => {
  const res = await fetch(`${srv.url}/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = await res.json();
  assert.equal(typeof body, 'object');
  assert.notEqual(body, null);
});

test('CORS preflight allows the headers supabase-js sends', async () => {
  const wanted = ['apikey', 'authorization', 'x-client-info', 'content-type', 'prefer'];
  const res = await fetch(`${srv.restUrl}/posts`, {
    method: 'OPTIONS',
    headers: {
      Origin: ORIGIN,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': wanted.join(','),
    },
  });
  await res.text();
  assert.ok(res.status >= 200 && res.status < 300, `preflight status ${res.status}`);
  const allowOrigin = res.headers.get('access-control-allow-origin');
  assert.ok(allowOrigin === '*' || allowOrigin === ORIGIN, `allow-origin: ${allowOrigin}`);
  const allowHeaders = splitList(res.headers.get('access-control-allow-headers'));
  if (!allowHeaders.includes('*')) {
    for (const h of wanted) assert.ok(allowHeaders.includes(h), `allow-headers lacks ${h}: ${allowHeaders}`);
  }
  const allowMethods = splitList(res.headers.get('access-control-allow-methods'));
  if (!allowMethods.includes('*')) {
    for (const m of ['get', 'post', 'patch', 'delete']) {
      assert.ok(allowMethods.includes(m), `allow-methods lacks ${m}: ${allowMethods}`);
    }
  }
});

test('CORS preflight allows every header the protocol lists', async () => {
  const wanted = [
    'apikey', 'authorization', 'x-client-info', 'content-type', 'accept-profile', 'content-profile',
    'prefer', 'x-upsert', 'cache-control', 'x-metadata', 'x-region', 'x-supabase-api-version',
    'x-retry-count', 'traceparent',
  ];
  const res = await fetch(`${srv.restUrl}/posts`, {
    method: 'OPTIONS',
    headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': wanted.join(',') },
  });
  await res.text();
  assert.ok(res.status >= 200 && res.status < 300, `preflight status ${res.status}`);
  const allowHeaders = splitList(res.headers.get('access-control-allow-headers'));
  if (!allowHeaders.includes('*')) {
    for (const h of wanted) assert.ok(allowHeaders.includes(h), `allow-headers lacks ${h}: ${allowHeaders}`);
  }
});

test('CORS on a real response: allow-origin and Content-Range exposed', async () => {
  const r = await rest(srv, '/posts?select=id&limit=1', { headers: { Origin: ORIGIN, Prefer: 'count=exact' } });
  assert.ok([200, 206].includes(r.status), `${r.status} ${r.text}`);
  const allowOrigin = r.headers.get('access-control-allow-origin');
  assert.ok(allowOrigin === '*' || allowOrigin === ORIGIN, `allow-origin: ${allowOrigin}`);
  const expose = splitList(r.headers.get('access-control-expose-headers'));
  assert.ok(expose.includes('*') || expose.includes('content-range'), `expose-headers: ${expose}`);
});

test('GET /rest/v1/ with Accept: application/openapi+json describes every table', async () => {
  const r = await rest(srv, '/', { headers: { Accept: 'application/openapi+json' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(typeof r.json, 'object', r.text.slice(0, 500));
  assert.equal(typeof r.json.openapi, 'string', `no "openapi" field: ${r.text.slice(0, 500)}`);
  assert.ok(r.json.openapi.startsWith('3.'), `openapi = ${r.json.openapi}`);
  assert.equal(typeof r.json.paths, 'object');
  for (const t of ['authors', 'posts', 'comments', 'messages']) {
    assert.ok(`/${t}` in r.json.paths, `paths lacks /${t}: ${Object.keys(r.json.paths)}`);
  }
  assert.ok(!Object.keys(r.json.paths).some((p) => /sqlite_/.test(p)), 'system tables leaked into OpenAPI');
});

test('supabase.getOpenApiSpec() gets the same document', async () => {
  const db = srv.client('service');
  assert.equal(typeof db.getOpenApiSpec, 'function');
  const res = await db.getOpenApiSpec();
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.ok(String(res.data?.openapi).startsWith('3.'));
  assert.ok('/posts' in res.data.paths);
});

test('Content-Range: 0-1/* without count, 0-1/5 with count=exact, */0 when empty', async () => {
  const a = await rest(srv, '/posts?select=id&order=id&limit=2');
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(a.json, [{ id: 1 }, { id: 2 }]);
  assert.equal(a.headers.get('content-range'), '0-1/*');

  const b = await rest(srv, '/posts?select=id&order=id&limit=2', { headers: { Prefer: 'count=exact' } });
  assert.ok([200, 206].includes(b.status), `${b.status} ${b.text}`);
  assert.deepEqual(b.json, [{ id: 1 }, { id: 2 }]);
  assert.equal(b.headers.get('content-range'), '0-1/5');

  const c = await rest(srv, '/posts?select=id&id=eq.999', { headers: { Prefer: 'count=exact' } });
  assert.equal(c.status, 200, c.text);
  assert.deepEqual(c.json, []);
  assert.equal(c.headers.get('content-range'), '*/0');

  const d = await rest(srv, '/posts?select=id&order=id&offset=3', { headers: { Prefer: 'count=exact' } });
  assert.deepEqual(d.json, [{ id: 4 }, { id: 5 }]);
  assert.equal(d.headers.get('content-range'), '3-4/5');
});

test('JSON responses are application/json; plain reads need no Accept header', async () => {
  const r = await rest(srv, '/authors?select=name&id=eq.1');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(r.json, [{ name: 'Ada' }]);
});

test('a + in the query string decodes as a space, %2B as a plus', async () => {
  const r = await rest(srv, '/posts?select=id&title=eq.Second+post');
  assert.deepEqual(r.json, [{ id: 2 }]);
  const p = await rest(srv, '/posts?select=id&title=eq.Second%2Bpost');
  assert.deepEqual(p.json, []);
});

test('several Prefer values in one header, comma separated', async () => {
  const r = await rest(srv, '/authors?select=id,name', {
    method: 'POST',
    headers: { Prefer: 'count=exact, return=representation' },
    body: { id: 10, name: 'Dora' },
  });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.json, [{ id: 10, name: 'Dora' }]);
  assert.match(r.headers.get('content-range') ?? '', /\/1$/);
  const del = await rest(srv, '/authors?id=eq.10', { method: 'DELETE', headers: { Prefer: 'return=minimal' } });
  assert.equal(del.status, 204, del.text);
  assert.equal(del.text, '');
});

test('Prefer: tx=rollback over plain HTTP keeps nothing', async () => {
  const r = await rest(srv, '/authors?select=name', {
    method: 'POST',
    headers: { Prefer: 'return=representation, tx=rollback' },
    body: { id: 11, name: 'Ephemeral' },
  });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.json, [{ name: 'Ephemeral' }]);
  const check = await rest(srv, '/authors?select=id&id=eq.11');
  assert.deepEqual(check.json, []);
});

test('HEAD returns headers only', async () => {
  const res = await fetch(`${srv.restUrl}/posts?select=id`, {
    method: 'HEAD',
    headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}`, Prefer: 'count=exact' },
  });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '');
  assert.equal(res.headers.get('content-range'), '0-4/5');
});

test('`outpost keys --json` prints url and keys valid for this server', async () => {
  const { stdout } = await run(OUTPOST_BIN, ['keys', '--json', '--data-dir', srv.dataDir], {
    env: { ...process.env, OUTPOST_JWT_SECRET: srv.secret },
    timeout: 20_000,
  });
  const keys = JSON.parse(stdout);
  for (const k of ['url', 'anon_key', 'service_role_key']) assert.equal(typeof keys[k], 'string', `keys.${k}: ${stdout}`);
  assert.match(keys.url, /^https?:\/\//);
  assert.equal(decodeJwt(keys.anon_key).role, 'anon');
  assert.equal(decodeJwt(keys.service_role_key).role, 'service_role');
  assert.equal(decodeJwt(keys.service_role_key).iss, 'outpost');
  assert.deepEqual(JSON.parse(Buffer.from(keys.anon_key.split('.')[0], 'base64url')).alg, 'HS256');

  const data = ok(await srv.client(keys.service_role_key).from('authors').select('name').eq('id', 2));
  assert.deepEqual(data, [{ name: 'Brian' }]);
  // the anon key is accepted; RLS (on by default, no policies here) hides every row
  const anon = await srv.client(keys.anon_key).from('authors').select('name');
  assert.equal(anon.error, null, JSON.stringify(anon.error));
  assert.equal(anon.status, 200);
  assert.deepEqual(anon.data, []);
  const ins = await srv.client(keys.anon_key).from('authors').insert({ name: 'Keyholder' });
  assert.equal(ins.status, 401);
  assert.equal(ins.error?.code, '42501');
  assert.deepEqual(ok(await srv.client(keys.service_role_key).from('authors').select('id').eq('name', 'Keyholder')), []);
});

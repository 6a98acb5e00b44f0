// Functions (/functions/v1) through supabase-js `functions.invoke`: bodies and answers of every
// kind, the caller's JWT, the Web APIs a function uses, errors in reference §6's shapes, limits
// answered cleanly while the server keeps serving, and reloading a changed function.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FunctionsHttpError, FunctionsRelayError } from '@supabase/supabase-js';
import { createServer } from 'node:http';
import { startServer } from '../lib/server.js';

const FUNCTIONS = {
  echo: `Deno.serve(async (req) => {
    const url = new URL(req.url);
    const type = req.headers.get('content-type') || '';
    let body = null;
    if (type.startsWith('application/json')) body = await req.json();
    else if (type.startsWith('text/')) body = await req.text();
    else if (type.startsWith('application/x-www-form-urlencoded')) body = Object.fromEntries((await req.formData()).entries());
    else if (req.method !== 'GET') body = { bytes: new Uint8Array(await req.arrayBuffer()).length };
    const auth = req.headers.get('authorization') || '';
    const claims = auth ? JSON.parse(atob(auth.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) : null;
    return Response.json({ method: req.method, path: url.pathname, q: url.searchParams.get('q'), type, body, role: claims?.role ?? null, sub: claims?.sub ?? null });
  });`,
  kinds: `export default {
    async fetch(req) {
      const kind = new URL(req.url).searchParams.get('kind');
      if (kind === 'text') return new Response('plain words');
      if (kind === 'bytes') return new Response(new Uint8Array([0, 1, 2, 250]), { headers: { 'content-type': 'application/octet-stream' } });
      if (kind === 'status') return Response.json({ error: 'nope' }, { status: 418, headers: { 'x-custom': 'yes' } });
      if (kind === 'throw') throw new Error('boom from the function');
      if (kind === 'not-a-response') return { status: 200 };
      return Response.json({ kind });
    },
  };`,
  webapis: `Deno.serve(async () => {
    const h = new Headers({ 'X-A': '1' }); h.append('x-a', '2');
    const u = new URL('/p/q?x=1&y=two+words', 'https://example.com/base/');
    u.searchParams.append('z', 'ä');
    const enc = new TextEncoder().encode('héllo');
    const rnd = crypto.getRandomValues(new Uint8Array(8));
    console.log('web apis ran', { n: 1 });
    return Response.json({
      header: h.get('x-a'), has: h.has('X-A'),
      url: u.href, host: u.hostname, x: u.searchParams.get('x'), y: u.searchParams.get('y'),
      bytes: enc.length, back: new TextDecoder().decode(enc),
      b64: btoa('hi there'), unb64: atob('aGkgdGhlcmU='),
      uuid: /^[0-9a-f-]{36}$/.test(crypto.randomUUID()), rnd: rnd.length,
      env: [Deno.env.get('SUPABASE_URL') !== undefined, typeof Deno.env.get('SUPABASE_ANON_KEY'), Deno.env.get('NOPE') ?? null],
    });
  });`,
  public: `export default { fetch: async (req) => new Response('public:' + (await req.text()), { status: 201 }) };`,
  loop: `export default { fetch() { for (;;) {} } };`,
  deep: `const f = (n) => f(n + 1); export default { fetch() { return f(0); } };`,
  broken: `export default { fetch( {`,
  slow: `export default { fetch() { let x = 0; for (let i = 0; i < 3000000; i++) x += i; return new Response(String(x)); } };`,
  reload: `Deno.serve(() => new Response('version 1'));`,
  timers: `Deno.serve(async () => {
    const order = [];
    setTimeout(() => order.push('b'), 30);
    const t = setTimeout(() => order.push('never'), 10);
    clearTimeout(t);
    order.push('a');
    await new Promise((r) => setTimeout(r, 60));
    order.push('c');
    return Response.json(order);
  });`,
  fetcher: `Deno.serve(async (req) => {
    const { url } = await req.json();
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'x-from': 'fn' }, body: 'ping' });
      return Response.json({ status: r.status, type: r.headers.get('content-type'), body: await r.json() });
    } catch (e) {
      return Response.json({ error: String(e.message) }, { status: 502 });
    }
  });`,
};

describe('functions', () => {
  let srv;
  let dir;
  const user = () => srv.mintJwt({ role: 'authenticated', sub: 'aaaaaaaa-0000-4000-8000-00000000000a', aud: 'authenticated' });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'outpost-fn-'));
    for (const [name, code] of Object.entries(FUNCTIONS)) {
      await mkdir(path.join(dir, name));
      await writeFile(path.join(dir, name, 'index.js'), code);
    }
    await writeFile(path.join(dir, 'public', 'outpost.json'), '{"verify_jwt": false}');
    srv = await startServer({
      args: ['--functions-dir', dir],
      env: { OUTPOST_FUNCTIONS_LOOP_LIMIT: '2000000', OUTPOST_LOG: 'info', OUTPOST_FUNCTIONS_FETCH_ALLOW: '127.0.0.1' },
    });
  });
  after(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes JSON, text, binary and form bodies, with the caller and the query', async () => {
    const anon = srv.client('anon');
    let r = await anon.functions.invoke('echo', { body: { name: 'ada', n: [1, 2] } });
    assert.equal(r.error, null);
    // As on Supabase, the function sees its own name as the first path segment (Hono's basePath).
    assert.deepEqual(r.data, { method: 'POST', path: '/echo', q: null, type: 'application/json', body: { name: 'ada', n: [1, 2] }, role: 'anon', sub: null });
    r = await anon.functions.invoke('echo', { body: 'just text' });
    assert.equal(r.data.type, 'text/plain');
    assert.equal(r.data.body, 'just text');
    r = await anon.functions.invoke('echo', { body: new Uint8Array([1, 2, 3, 4, 5]).buffer });
    assert.equal(r.data.type, 'application/octet-stream');
    assert.deepEqual(r.data.body, { bytes: 5 });
    r = await anon.functions.invoke('echo', { body: 'a=1&b=two', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual(r.data.body, { a: '1', b: 'two' });
    r = await anon.functions.invoke('echo?q=find+me', { method: 'GET' });
    assert.equal(r.data.method, 'GET');
    assert.equal(r.data.q, 'find me');
    const asUser = srv.client(user());
    r = await asUser.functions.invoke('echo', { body: {} });
    assert.equal(r.data.role, 'authenticated');
    assert.equal(r.data.sub, 'aaaaaaaa-0000-4000-8000-00000000000a');
  });

  it('answers text, bytes and JSON as the client decodes them', async () => {
    const c = srv.client('anon');
    let r = await c.functions.invoke('kinds?kind=text', { method: 'GET' });
    assert.equal(r.data, 'plain words');
    r = await c.functions.invoke('kinds?kind=bytes', { method: 'GET' });
    assert.ok(r.data instanceof Blob);
    assert.deepEqual([...new Uint8Array(await r.data.arrayBuffer())], [0, 1, 2, 250]);
    r = await c.functions.invoke('kinds?kind=json', { method: 'GET' });
    assert.deepEqual(r.data, { kind: 'json' });
  });

  it("passes the function's own errors through, and marks Outpost's as relay errors", async () => {
    const c = srv.client('anon');
    let r = await c.functions.invoke('kinds?kind=status', { method: 'GET' });
    assert.ok(r.error instanceof FunctionsHttpError);
    assert.equal(r.error.context.status, 418);
    assert.equal(r.error.context.headers.get('x-custom'), 'yes');
    assert.deepEqual(await r.error.context.json(), { error: 'nope' });
    for (const kind of ['throw', 'not-a-response']) {
      r = await c.functions.invoke(`kinds?kind=${kind}`, { method: 'GET' });
      assert.ok(r.error instanceof FunctionsHttpError, kind);
      assert.equal(r.error.context.status, 500);
      const body = await r.error.context.json();
      assert.equal(body.code, 'WORKER_ERROR');
      assert.match(body.message, kind === 'throw' ? /boom from the function/ : /must return a Response/);
    }
    r = await c.functions.invoke('missing');
    assert.ok(r.error instanceof FunctionsRelayError);
    assert.equal(r.error.context.status, 404);
    r = await c.functions.invoke('broken');
    assert.ok(r.error instanceof FunctionsRelayError);
    assert.equal((await r.error.context.json()).code, 'BOOT_ERROR');
  });

  it('verifies the JWT unless the function is public', async () => {
    let res = await fetch(`${srv.url}/functions/v1/echo`, { method: 'POST' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('x-relay-error'), 'true');
    assert.equal((await res.json()).code, 'UNAUTHORIZED_NO_AUTH_HEADER');
    res = await fetch(`${srv.url}/functions/v1/echo`, { method: 'POST', headers: { Authorization: 'Bearer not.a.jwt' } });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, 'UNAUTHORIZED_INVALID_JWT');
    const forged = srv.mintJwt({ role: 'service_role' }).slice(0, -4) + 'AAAA';
    res = await fetch(`${srv.url}/functions/v1/echo`, { method: 'POST', headers: { Authorization: `Bearer ${forged}` } });
    assert.equal(res.status, 401);
    res = await fetch(`${srv.url}/functions/v1/public`, { method: 'POST', body: 'stripe-ish' });
    assert.equal(res.status, 201);
    assert.equal(await res.text(), 'public:stripe-ish');
  });

  it('offers the Web APIs an edge function uses, and captures console output', async () => {
    const r = await srv.client('anon').functions.invoke('webapis', { body: {} });
    assert.equal(r.error, null);
    assert.deepEqual(r.data, {
      header: '1, 2', has: true,
      url: 'https://example.com/p/q?x=1&y=two%20words&z=%C3%A4', host: 'example.com', x: '1', y: 'two words',
      bytes: 6, back: 'héllo', b64: 'aGkgdGhlcmU=', unb64: 'hi there', uuid: true, rnd: 8,
      env: [true, 'string', null],
    });
    // Console lines go to the server's log (written in batches: wait for it).
    const deadline = Date.now() + 5000;
    while (!/web apis ran \{"n":1\}/.test(srv.logs().stderr)) {
      assert.ok(Date.now() < deadline, 'the console line never reached the log');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('stops runaway functions cleanly and keeps serving', async () => {
    const c = srv.client('anon');
    for (const name of ['loop', 'deep']) {
      const r = await c.functions.invoke(name);
      assert.ok(r.error instanceof FunctionsRelayError, name);
      assert.equal(r.error.context.status, 546, name);
      assert.equal((await r.error.context.json()).code, 'WORKER_LIMIT');
    }
    const r = await c.functions.invoke('kinds?kind=json', { method: 'GET' });
    assert.deepEqual(r.data, { kind: 'json' });
  });

  it('runs timers and fetches within the allow-list', async () => {
    const c = srv.client('anon');
    let r = await c.functions.invoke('timers');
    assert.deepEqual(r.data, ['a', 'b', 'c']);
    const upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, got: body, from: req.headers['x-from'] }));
      });
    });
    await new Promise((ok) => upstream.listen(0, '127.0.0.1', ok));
    try {
      const url = `http://127.0.0.1:${upstream.address().port}/x`;
      r = await c.functions.invoke('fetcher', { body: { url } });
      assert.equal(r.error, null);
      assert.deepEqual(r.data, { status: 200, type: 'application/json', body: { method: 'POST', got: 'ping', from: 'fn' } });
      r = await c.functions.invoke('fetcher', { body: { url: 'http://localhost:1/x' } });
      assert.equal(r.error.context.status, 502);
      assert.match((await r.error.context.json()).error, /not in OUTPOST_FUNCTIONS_FETCH_ALLOW/);
      r = await c.functions.invoke('fetcher', { body: { url: 'ftp://127.0.0.1/x' } });
      assert.match((await r.error.context.json()).error, /only http and https/);
    } finally {
      upstream.close();
    }
  });

  it('reloads a function when its file changes', async () => {
    const c = srv.client('anon');
    assert.equal((await c.functions.invoke('reload')).data, 'version 1');
    const file = path.join(dir, 'reload', 'index.js');
    await writeFile(file, `Deno.serve(() => new Response('version 2'));`);
    const later = new Date(Date.now() + 5000);
    await utimes(file, later, later);
    assert.equal((await c.functions.invoke('reload')).data, 'version 2');
  });
});

describe('function limits', () => {
  let srv;
  let dir;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'outpost-fn-limits-'));
    for (const name of ['slow', 'public']) {
      await mkdir(path.join(dir, name));
      await writeFile(path.join(dir, name, 'index.js'), FUNCTIONS[name]);
    }
    await writeFile(path.join(dir, 'public', 'outpost.json'), '{"verify_jwt": false}');
    await mkdir(path.join(dir, 'big'));
    await writeFile(path.join(dir, 'big', 'index.js'), `export default { fetch: () => new Response('x'.repeat(3000)) };`);
    srv = await startServer({
      args: ['--functions-dir', dir],
      env: { OUTPOST_FUNCTIONS_WORKERS: '1', OUTPOST_FUNCTIONS_QUEUE: '0', OUTPOST_FUNCTIONS_TIMEOUT: '300ms', OUTPOST_FUNCTIONS_MAX_BODY_BYTES: '2048' },
    });
  });
  after(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('times out, refuses when every worker is busy, bounds bodies, and recovers', async () => {
    const c = srv.client('anon');
    const first = c.functions.invoke('slow', { method: 'GET' });
    await new Promise((r) => setTimeout(r, 50));
    const second = await c.functions.invoke('slow', { method: 'GET' });
    assert.ok(second.error instanceof FunctionsRelayError);
    assert.equal(second.error.context.status, 503);
    assert.equal((await second.error.context.json()).code, 'WORKER_LIMIT');
    const r = await first;
    assert.ok(r.error instanceof FunctionsRelayError, 'the slow call outlived its 300 ms');
    assert.equal(r.error.context.status, 504);
    let res = await fetch(`${srv.url}/functions/v1/public`, { method: 'POST', body: 'y'.repeat(5000) });
    assert.equal(res.status, 413);
    // Once the worker is free again, calls succeed.
    const deadline = Date.now() + 30000;
    for (;;) {
      res = await fetch(`${srv.url}/functions/v1/public`, { method: 'POST', body: 'ok' });
      if (res.status === 201) break;
      assert.ok(Date.now() < deadline, 'the worker never came back');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(await res.text(), 'public:ok');
    res = await fetch(`${srv.url}/functions/v1/big`, { headers: { Authorization: `Bearer ${srv.anonKey}` } });
    assert.equal(res.status, 500);
    assert.equal((await res.json()).code, 'RESPONSE_TOO_LARGE');
  });
});

describe('cron', () => {
  let srv;
  let dir;
  let upstream;
  const hits = [];
  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        hits.push({ path: req.url, at: Date.now(), body: body ? JSON.parse(body) : null });
        res.end('ok');
      });
    });
    await new Promise((ok) => upstream.listen(0, '127.0.0.1', ok));
    const base = `http://127.0.0.1:${upstream.address().port}`;
    dir = await mkdtemp(path.join(tmpdir(), 'outpost-cron-'));
    const fns = {
      tick: `Deno.serve(async (req) => {
        const job = await req.json();
        await fetch('${base}/tick', { method: 'POST', body: JSON.stringify({ ...job, trigger: req.headers.get('x-outpost-trigger') }) });
        return new Response('ok');
      });`,
      slowtick: `Deno.serve(async () => {
        await fetch('${base}/start', { method: 'POST' });
        await new Promise((r) => setTimeout(r, 1500));
        await fetch('${base}/end', { method: 'POST' });
        return new Response('ok');
      });`,
    };
    for (const [name, code] of Object.entries(fns)) {
      await mkdir(path.join(dir, name));
      await writeFile(path.join(dir, name, 'index.js'), code);
      await writeFile(path.join(dir, name, 'outpost.json'), '{"schedule": "* * * * * *"}');
    }
    srv = await startServer({
      args: ['--functions-dir', dir],
      env: { OUTPOST_FUNCTIONS_FETCH_ALLOW: '127.0.0.1', OUTPOST_FUNCTIONS_TIMEOUT: '5s' },
    });
  });
  after(async () => {
    await srv?.stop();
    upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs scheduled functions each second, never overlapping a run still going', async () => {
    // One more, deployed through the admin API rather than the directory.
    const base = `http://127.0.0.1:${upstream.address().port}`;
    const deployed = await fetch(`${srv.url}/_/api/functions/dbtick`, {
      method: 'PUT',
      headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ source: `Deno.serve(async () => { await fetch('${base}/dbtick', { method: 'POST' }); return new Response('ok'); });`, schedule: '* * * * * *' }),
    });
    assert.equal(deployed.status, 201);
    await new Promise((r) => setTimeout(r, 4500));
    assert.ok(hits.filter((h) => h.path === '/dbtick').length >= 2, 'the deployed schedule did not fire');
    const ticks = hits.filter((h) => h.path === '/tick');
    assert.ok(ticks.length >= 3, `only ${ticks.length} ticks in 4.5 s`);
    for (const t of ticks) {
      assert.equal(t.body.schedule, '* * * * * *');
      assert.ok(!Number.isNaN(Date.parse(t.body.scheduled_at)));
      assert.equal(t.body.trigger, 'cron');
    }
    const slow = hits.filter((h) => h.path === '/start' || h.path === '/end').map((h) => h.path);
    assert.ok(slow.filter((p) => p === '/start').length >= 2, slow.join(','));
    for (let i = 0; i + 1 < slow.length; i++) {
      assert.notEqual(slow[i], slow[i + 1], `runs overlapped: ${slow.join(',')}`);
    }
    assert.ok(slow.filter((p) => p === '/start').length <= 3, 'firings during a run were skipped');
    const res = await fetch(`${srv.url}/_/api/jobs?target=tick&state=done`, {
      headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}` },
    });
    const done = await res.json();
    assert.ok(done.length >= 3);
    assert.ok(done.every((j) => j.kind === 'function'));
    const logs = await (await fetch(`${srv.url}/_/api/functions/tick/logs`, {
      headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}` },
    })).json();
    assert.ok(logs.length >= 3);
    assert.ok(logs.every((e) => e.trigger === 'cron' && e.status === 200));
  });
});

describe('webhooks that call a function', () => {
  let srv;
  let dir;
  let upstream;
  const hits = [];
  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => { hits.push(JSON.parse(body)); res.end('ok'); });
    });
    await new Promise((ok) => upstream.listen(0, '127.0.0.1', ok));
    dir = await mkdtemp(path.join(tmpdir(), 'outpost-hookfn-'));
    await mkdir(path.join(dir, 'onorder'));
    await writeFile(path.join(dir, 'onorder', 'index.js'), `Deno.serve(async (req) => {
      const change = await req.json();
      await fetch('http://127.0.0.1:${upstream.address().port}/', { method: 'POST', body: JSON.stringify({ change, trigger: req.headers.get('x-outpost-trigger') }) });
      return new Response('ok');
    });`);
    srv = await startServer({
      migrations: { '001_orders.sql': 'CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT NOT NULL);' },
      args: ['--functions-dir', dir],
      env: { OUTPOST_FUNCTIONS_FETCH_ALLOW: '127.0.0.1' },
    });
  });
  after(async () => {
    await srv?.stop();
    upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const admin = (method, p, body) => fetch(`${srv.url}/_/api${p}`, {
    method,
    headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

  it('runs the function with the change, in the job queue', async () => {
    let res = await admin('POST', '/webhooks', { name: 'orders-fn', table: 'orders', events: ['INSERT'], function: 'onorder' });
    assert.equal(res.status, 201);
    assert.equal((await res.json()).function, 'onorder');
    res = await admin('POST', '/webhooks', { name: 'both', table: 'orders', function: 'onorder', url: 'http://127.0.0.1:9/' });
    assert.equal(res.status, 400);
    assert.match((await res.json()).message, /url or a function/);
    res = await admin('POST', '/webhooks', { name: 'ghost', table: 'orders', function: 'nope' });
    assert.equal(res.status, 400);
    assert.match((await res.json()).message, /no function named nope/);

    const { error } = await srv.client('service').from('orders').insert({ id: 7, status: 'new' });
    assert.equal(error, null);
    const deadline = Date.now() + 10000;
    while (hits.length < 1) {
      assert.ok(Date.now() < deadline, 'the function never ran');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(hits[0], {
      change: { type: 'INSERT', table: 'orders', schema: 'public', record: { id: 7, status: 'new' }, old_record: null },
      trigger: 'webhook',
    });
  });
});

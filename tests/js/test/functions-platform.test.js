// Functions beyond the request/response basics: deploying through the admin API (kept in the
// database), secrets in Deno.env, execution logs, the built-in `outpost` module (queries under
// the caller's policies or as service_role, broadcasts), crypto.subtle and the webhook-signature
// helper, multipart FormData bodies and streaming responses. Driven by supabase-js 2.119.1
// (`functions.invoke`, realtime over `ws`) and plain HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FunctionsHttpError, FunctionsRelayError } from '@supabase/supabase-js';
import { startServer } from '../lib/server.js';
import { realtimeKit, subscribed, until } from '../lib/realtime.js';

const A = 'aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa';
const B = 'bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb';

const SCHEMA = `
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  owner UUID NOT NULL DEFAULT (auth.uid()),
  body TEXT NOT NULL
);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own notes" ON notes FOR ALL TO authenticated
  USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
CREATE FUNCTION note_count() RETURNS int STABLE AS $$ SELECT count(*) FROM notes $$;
`;

// Lives in --functions-dir: the admin API may not deploy over it.
const ON_DISK = `Deno.serve(() => new Response('from disk'));`;

const CODE = {
  hello: `Deno.serve(() => new Response('hello v1'));`,
  secret: `Deno.serve(() => Response.json({ api: Deno.env.get('API_TOKEN') ?? null, other: Deno.env.get('OTHER') ?? null, url: typeof Deno.env.get('SUPABASE_URL') }));`,
  chatty: `Deno.serve(async (req) => {
    const { fail } = await req.json();
    console.log('starting', { fail });
    console.error('an error line');
    if (fail) throw new Error('asked to fail');
    return new Response('fine');
  });`,
  notes: `import { db } from 'outpost';
  Deno.serve(async (req) => {
    const { action, body, id } = req.method === 'POST' ? await req.json() : {};
    if (action === 'insert') {
      const r = await db.from('notes').insert({ id, body }).select('id,body');
      return Response.json(r);
    }
    if (action === 'insert-for') {
      const r = await db.from('notes').insert({ id, body, owner: '${B}' });
      return Response.json(r);
    }
    if (action === 'all') {
      const r = await db.asServiceRole().from('notes').select('id,owner', { count: 'exact' }).order('id');
      return Response.json(r);
    }
    if (action === 'one') {
      const r = await db.from('notes').select('id,body').eq('id', id).maybeSingle();
      return Response.json(r);
    }
    if (action === 'update') {
      const r = await db.from('notes').update({ body }).eq('id', id).select();
      return Response.json(r);
    }
    if (action === 'count') {
      const mine = await db.rpc('note_count');
      const all = await db.asServiceRole().rpc('note_count');
      return Response.json({ mine: mine.data, all: all.data });
    }
    if (action === 'bad') {
      const r = await db.from('no_such_table').select('*');
      return Response.json(r);
    }
    const r = await db.from('notes').select('id,body').order('id', { ascending: true });
    return Response.json(r);
  });`,
  shout: `import { broadcast } from 'outpost';
  Deno.serve(async (req) => {
    const { topic, text } = await req.json();
    const r = await broadcast(topic, 'shout', { text });
    return Response.json(r, { status: r.error ? 500 : 200 });
  });`,
  imports: `import x from 'npm:left-pad'; Deno.serve(() => new Response(x));`,
  subtle: `Deno.serve(async (req) => {
    const { secret, message } = await req.json();
    const enc = new TextEncoder();
    const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
    const digest = hex(await crypto.subtle.digest('SHA-256', enc.encode(message)));
    const sha1 = hex(await crypto.subtle.digest({ name: 'SHA-1' }, enc.encode(message)));
    const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    const sig = await crypto.subtle.sign('HMAC', key, enc.encode(message));
    const ok = await crypto.subtle.verify('HMAC', key, sig, enc.encode(message));
    const tampered = await crypto.subtle.verify('HMAC', key, sig, enc.encode(message + '!'));
    let unsupported = null;
    try { await crypto.subtle.digest('MD5', enc.encode(message)); } catch (e) { unsupported = e.message; }
    let exported = null;
    try { await crypto.subtle.exportKey('raw', key); } catch (e) { exported = e.name; }
    return Response.json({ digest, sha1, hmac: hex(sig), ok, tampered, unsupported, exported });
  });`,
  // A Stripe-style receiver: public (verify_jwt false), checks the signature over the raw body.
  stripe: `import { webhooks } from 'outpost';
  Deno.serve(async (req) => {
    const raw = await req.text();
    const ok = await webhooks.verify({ secret: Deno.env.get('STRIPE_WEBHOOK_SECRET'), payload: raw, signature: req.headers.get('stripe-signature') });
    if (!ok) return Response.json({ error: 'bad signature' }, { status: 400 });
    const event = JSON.parse(raw);
    return Response.json({ received: event.type });
  });`,
  github: `import { webhooks } from 'outpost';
  Deno.serve(async (req) => {
    const raw = await req.text();
    const ok = await webhooks.verify({ secret: 'gh-secret', payload: raw, signature: req.headers.get('x-hub-signature-256'), scheme: 'github' });
    return new Response(ok ? 'ok' : 'no', { status: ok ? 200 : 401 });
  });`,
  form: `Deno.serve(async (req) => {
    const form = await req.formData();
    const file = form.get('upload');
    const out = { title: form.get('title'), tags: form.getAll('tag') };
    if (file && typeof file === 'object') {
      out.file = { name: file.name, type: file.type, size: file.size, text: await file.text() };
    }
    if (new URL(req.url).searchParams.get('echo')) {
      const back = new FormData();
      back.append('seen', String(out.title));
      back.append('copy', new File([await file.arrayBuffer()], 'copy.txt', { type: 'text/plain' }));
      return new Response(back);
    }
    return Response.json(out);
  });`,
  // Streams three chunks, one per pull; the second waits until the test says it received the
  // first (fetch blocks this worker, so the wait sits in pull, after the first chunk went out).
  stream: `Deno.serve((req) => {
    const gate = new URL(req.url).searchParams.get('gate');
    const fail = new URL(req.url).searchParams.get('fail');
    let step = 0;
    const body = new ReadableStream({
      async pull(controller) {
        step += 1;
        if (step === 1) return controller.enqueue('first;');
        if (step === 2) {
          if (gate) await fetch(gate);
          return controller.enqueue(new TextEncoder().encode('second;'));
        }
        if (fail) return controller.error(new Error('broke mid-stream'));
        await new Promise((r) => setTimeout(r, 20));
        controller.enqueue('third');
        controller.close();
      },
    });
    return new Response(body, { headers: { 'content-type': 'text/plain' } });
  });`,
  readback: `Deno.serve(async () => {
    const s = new ReadableStream({ start(c) { c.enqueue('a'); c.enqueue('b'); c.close(); } });
    const text = await new Response(s).text();
    const chunks = [];
    for await (const c of new Response('xyz').body) chunks.push(c.length);
    return Response.json({ text, chunks });
  });`,
  counter: `let n = 0;
  Deno.serve(() => { n += 1; return Response.json({ n, leak: globalThis.leak ?? null, proto: [].leak ?? null }); });`,
  polluter: `Deno.serve(() => {
    const tries = {
      global: () => { globalThis.leak = 'caller data'; },
      array: () => { Array.prototype.leak = 'caller data'; },
      hidden: () => { Object.getPrototypeOf(async function () {}).leak = 'caller data'; },
      fetch: () => { globalThis.fetch = () => 'stolen'; },
      outpost: () => { Outpost.db.from = () => 'stolen'; },
      errorName: () => { Error.prototype.name = 'Hijacked'; },
    };
    const refused = [];
    for (const [name, f] of Object.entries(tries)) { try { f(); } catch (e) { if (e instanceof TypeError) refused.push(name); } }
    class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; } }
    const o = {}; o.toString = () => 'custom';
    setTimeout(() => {}, 60000);
    return Response.json({ refused, error: String(new MyError('x')), object: String(o), leak: globalThis.leak ?? null });
  });`,
};

describe('functions deployed through the admin API', () => {
  let srv;
  let dir;
  const jwt = (sub) => srv.mintJwt({ role: 'authenticated', sub, aud: 'authenticated' });
  const admin = (method, p, body, key = srv.serviceKey) => fetch(`${srv.url}/_/api${p}`, {
    method,
    headers: { apikey: key, Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const deploy = async (name, source, extra = {}) => {
    const res = await admin('PUT', `/functions/${name}`, { source, ...extra });
    assert.ok(res.status === 201 || res.status === 200, `deploy ${name}: ${res.status} ${await res.clone().text()}`);
    return res.json();
  };
  const invoke = (name, body, token = srv.anonKey) => srv.client(token).functions.invoke(name, { body });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'outpost-fnapi-'));
    await mkdir(path.join(dir, 'ondisk'));
    await writeFile(path.join(dir, 'ondisk', 'index.js'), ON_DISK);
    srv = await startServer({
      migrations: { '001_notes.sql': SCHEMA },
      args: ['--functions-dir', dir],
      env: { OUTPOST_FUNCTIONS_FETCH_ALLOW: '127.0.0.1', OUTPOST_FUNCTIONS_LOG_ENTRIES: '5' },
    });
  });
  after(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('deploys, lists, reads, replaces and deletes a function', async () => {
    const first = await deploy('hello', CODE.hello);
    assert.equal(first.name, 'hello');
    assert.equal(first.version, 1);
    assert.equal(first.verify_jwt, true);
    assert.equal(first.origin, 'database');
    let r = await invoke('hello');
    assert.equal(r.error, null);
    assert.equal(r.data, 'hello v1');

    let res = await admin('PUT', '/functions/hello', { source: CODE.hello.replace('v1', 'v2'), verify_jwt: false });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).version, 2);
    // Public now: no Authorization header at all.
    res = await fetch(`${srv.url}/functions/v1/hello`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello v2');

    res = await admin('GET', '/functions');
    const list = await res.json();
    assert.deepEqual(list.map((f) => [f.name, f.origin]), [['hello', 'database'], ['ondisk', 'directory']]);
    assert.equal(list[0].source, undefined);
    res = await admin('GET', '/functions/hello');
    const one = await res.json();
    assert.match(one.source, /hello v2/);
    assert.equal(one.verify_jwt, false);
    res = await admin('GET', '/functions/ondisk');
    assert.equal((await res.json()).source, ON_DISK);

    res = await admin('DELETE', '/functions/hello');
    assert.equal(res.status, 204);
    r = await invoke('hello');
    assert.ok(r.error instanceof FunctionsRelayError);
    assert.equal(r.error.context.status, 404);
    res = await admin('DELETE', '/functions/hello');
    assert.equal(res.status, 404);
    assert.equal((await res.json()).code, 'not_found');
  });

  it('refuses bad deployments with a reason and keeps what ran before', async () => {
    await deploy('keep', `Deno.serve(() => new Response('kept'));`);
    const cases = [
      ['/functions/keep', { source: 'export default { fetch( {' }, 400, /source: /],
      ['/functions/keep', { source: CODE.hello, schedule: 'every minute' }, 400, /schedule: /],
      ['/functions/keep', { source: CODE.hello, runtime: 'deno' }, 400, /unknown field/],
      ['/functions/keep', { verify_jwt: true }, 400, /source/],
      ['/functions/bad%20name', { source: CODE.hello }, 400, /name: /],
      ['/functions/ondisk', { source: CODE.hello }, 409, /functions directory/],
    ];
    for (const [p, body, status, message] of cases) {
      const res = await admin('PUT', p, body);
      assert.equal(res.status, status, `${p} ${JSON.stringify(body)}`);
      const err = await res.json();
      assert.match(err.message, message);
      assert.ok(err.code);
    }
    let res = await admin('PUT', '/functions/keep', '{not json');
    assert.equal(res.status, 400);
    res = await admin('DELETE', '/functions/ondisk');
    assert.equal(res.status, 409);
    const r = await invoke('keep');
    assert.equal(r.data, 'kept');
    res = await admin('GET', '/functions/keep');
    assert.equal((await res.json()).version, 1);

    // The admin API is service_role only.
    for (const key of [srv.anonKey, jwt(A)]) {
      res = await admin('PUT', '/functions/sneaky', { source: CODE.hello }, key);
      assert.equal(res.status, 403);
      res = await admin('GET', '/secrets', undefined, key);
      assert.equal(res.status, 403);
    }
    res = await fetch(`${srv.url}/_/api/functions`);
    assert.equal(res.status, 401);
    res = await admin('GET', '/functions/sneaky');
    assert.equal(res.status, 404);
  });

  it('keeps secrets for Deno.env, shown only as digests', async () => {
    await deploy('secret', CODE.secret);
    let res = await admin('PUT', '/secrets', { API_TOKEN: 'tok-123' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { set: ['API_TOKEN'] });
    res = await admin('PUT', '/secrets', [{ name: 'OTHER', value: 'two' }]);
    assert.equal(res.status, 200);
    let r = await invoke('secret');
    assert.deepEqual(r.data, { api: 'tok-123', other: 'two', url: 'string' });

    res = await admin('GET', '/secrets');
    const list = await res.json();
    assert.deepEqual(list.map((s) => s.name), ['API_TOKEN', 'OTHER']);
    assert.equal(list[0].digest, createHash('sha256').update('tok-123').digest('hex'));
    assert.equal(JSON.stringify(list).includes('tok-123'), false);

    // All or nothing: one bad name and none is set.
    for (const body of [{ SUPABASE_URL: 'http://evil' }, { 'BAD-NAME': 'x' }, { GOOD: 'x', '1ST': 'y' }, { NUM: 5 }, {}, 'x']) {
      res = await admin('PUT', '/secrets', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).code, 'invalid_request');
    }
    res = await admin('GET', '/secrets');
    assert.equal((await res.json()).length, 2);

    res = await admin('DELETE', '/secrets/OTHER');
    assert.equal(res.status, 204);
    res = await admin('DELETE', '/secrets/OTHER');
    assert.equal(res.status, 404);
    r = await invoke('secret');
    assert.deepEqual(r.data, { api: 'tok-123', other: null, url: 'string' });
  });

  it('logs each invocation: status, duration, console output and errors', async () => {
    await deploy('chatty', CODE.chatty);
    let r = await invoke('chatty', { fail: false });
    assert.equal(r.data, 'fine');
    r = await invoke('chatty', { fail: true });
    assert.ok(r.error instanceof FunctionsHttpError);
    let res = await admin('GET', '/functions/chatty/logs');
    const logs = await res.json();
    assert.equal(logs.length, 2);
    const [failed, ok] = logs;
    assert.equal(ok.status, 200);
    assert.equal(ok.error, null);
    assert.equal(ok.trigger, 'http');
    assert.equal(ok.method, 'POST');
    assert.equal(ok.path, '/chatty');
    assert.ok(ok.duration_ms > 0);
    assert.deepEqual(ok.console, [{ level: 'log', message: 'starting {"fail":false}' }, { level: 'error', message: 'an error line' }]);
    assert.equal(failed.status, 500);
    assert.match(failed.error, /asked to fail/);
    assert.ok(failed.id > ok.id);

    res = await admin('GET', '/functions/chatty/logs?errors=true');
    assert.deepEqual((await res.json()).map((e) => e.id), [failed.id]);
    res = await admin('GET', `/functions/chatty/logs?after=${ok.id}`);
    assert.deepEqual((await res.json()).map((e) => e.id), [failed.id]);
    // At most OUTPOST_FUNCTIONS_LOG_ENTRIES (5) per function, the oldest dropped.
    for (let i = 0; i < 6; i++) await invoke('chatty', { fail: false });
    res = await admin('GET', '/functions/chatty/logs?limit=100');
    const kept = await res.json();
    assert.equal(kept.length, 5);
    assert.ok(kept.every((e) => e.id > failed.id));
    res = await admin('GET', '/functions/chatty/logs?limit=nope');
    assert.equal(res.status, 400);
    res = await admin('GET', '/functions/ghost/logs');
    assert.equal(res.status, 404);
    // A directory function logs too.
    await invoke('ondisk');
    res = await admin('GET', '/functions/ondisk/logs');
    assert.equal((await res.json())[0].status, 200);
  });

  it('queries the database as the caller, under the policies, or as service_role', async () => {
    await deploy('notes', CODE.notes);
    const asA = jwt(A);
    const asB = jwt(B);
    let r = await invoke('notes', { action: 'insert', id: 1, body: 'a1' }, asA);
    assert.deepEqual(r.data, { data: [{ id: 1, body: 'a1' }], error: null, count: null, status: 201, statusText: '' });
    await invoke('notes', { action: 'insert', id: 2, body: 'a2' }, asA);
    await invoke('notes', { action: 'insert', id: 3, body: 'b3' }, asB);
    // The policy's WITH CHECK refuses a row for someone else.
    r = await invoke('notes', { action: 'insert-for', id: 4, body: 'x' }, asA);
    assert.equal(r.data.status, 403);
    assert.equal(r.data.error.code, '42501');

    r = await invoke('notes', { action: 'list' }, asA);
    assert.deepEqual(r.data.data, [{ id: 1, body: 'a1' }, { id: 2, body: 'a2' }]);
    r = await invoke('notes', { action: 'list' }, asB);
    assert.deepEqual(r.data.data, [{ id: 3, body: 'b3' }]);
    r = await invoke('notes', { action: 'list' });
    assert.deepEqual(r.data.data, []);
    r = await invoke('notes', { action: 'one', id: 3 }, asA);
    assert.deepEqual(r.data.data, null);
    r = await invoke('notes', { action: 'one', id: 2 }, asA);
    assert.deepEqual(r.data.data, { id: 2, body: 'a2' });
    r = await invoke('notes', { action: 'update', id: 3, body: 'hijacked' }, asA);
    assert.deepEqual(r.data.data, []);
    r = await invoke('notes', { action: 'all' }, asA);
    assert.deepEqual(r.data.data, [{ id: 1, owner: A }, { id: 2, owner: A }, { id: 3, owner: B }]);
    assert.equal(r.data.count, 3);
    r = await invoke('notes', { action: 'count' }, asA);
    assert.deepEqual(r.data, { mine: 2, all: 3 });
    r = await invoke('notes', { action: 'bad' }, asA);
    assert.equal(r.data.status, 404);
    assert.equal(r.data.error.code, 'PGRST205');
    // Nothing was changed behind the policies' back.
    const { data } = await srv.client('service').from('notes').select('id,body').order('id');
    assert.deepEqual(data, [{ id: 1, body: 'a1' }, { id: 2, body: 'a2' }, { id: 3, body: 'b3' }]);
  });

  it('broadcasts on a realtime channel', async () => {
    await deploy('shout', CODE.shout);
    const kit = realtimeKit(srv);
    try {
      const listener = await kit.client();
      const got = [];
      const ch = listener.channel('lobby').on('broadcast', { event: 'shout' }, (m) => got.push(m.payload));
      await subscribed(ch);
      const r = await invoke('shout', { topic: 'lobby', text: 'hi all' });
      assert.equal(r.error, null);
      assert.deepEqual(r.data, { error: null, status: 202 });
      await until(() => got.length === 1, 'the broadcast');
      assert.deepEqual(got, [{ text: 'hi all' }]);
    } finally {
      await kit.closeAll();
    }
  });

  it('reuses warm contexts without letting one caller leave state for the next', async () => {
    await deploy('counter', CODE.counter);
    await deploy('polluter', CODE.polluter);
    for (let i = 0; i < 4; i++) {
      const p = await invoke('polluter');
      assert.deepEqual(p.data, {
        refused: ['global', 'array', 'hidden', 'fetch', 'outpost', 'errorName'],
        error: 'MyError: x',
        object: 'custom',
        leak: null,
      });
      // Module scope is fresh for every invocation; nothing reached the shared realm.
      const c = await invoke('counter');
      assert.deepEqual(c.data, { n: 1, leak: null, proto: null });
    }
  });

  it('imports only the built-in module', async () => {
    await deploy('imports', CODE.imports);
    const r = await invoke('imports');
    assert.ok(r.error instanceof FunctionsRelayError);
    const body = await r.error.context.json();
    assert.equal(body.code, 'BOOT_ERROR');
    assert.match(body.message, /only the built-in "outpost" module/);
  });

  it('offers crypto.subtle digests and HMAC keys', async () => {
    await deploy('subtle', CODE.subtle);
    const r = await invoke('subtle', { secret: 'k3y', message: 'hello' });
    assert.equal(r.error, null);
    assert.deepEqual(r.data, {
      digest: createHash('sha256').update('hello').digest('hex'),
      sha1: createHash('sha1').update('hello').digest('hex'),
      hmac: createHmac('sha256', 'k3y').update('hello').digest('hex'),
      ok: true,
      tampered: false,
      unsupported: 'MD5 is not supported: use SHA-1, SHA-256, SHA-384 or SHA-512',
      exported: 'InvalidAccessError',
    });
  });

  it('verifies inbound webhook signatures (Stripe and GitHub schemes)', async () => {
    await deploy('stripe', CODE.stripe, { verify_jwt: false });
    await deploy('github', CODE.github, { verify_jwt: false });
    await admin('PUT', '/secrets', { STRIPE_WEBHOOK_SECRET: 'whsec_test' });
    const payload = JSON.stringify({ id: 'evt_1', type: 'checkout.session.completed' });
    const sign = (t, body, secret = 'whsec_test') => `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
    const post = (name, headers, body = payload) => fetch(`${srv.url}/functions/v1/${name}`, { method: 'POST', headers, body });
    const now = Math.floor(Date.now() / 1000);
    let res = await post('stripe', { 'stripe-signature': sign(now, payload) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { received: 'checkout.session.completed' });
    for (const bad of [sign(now, payload, 'other'), sign(now - 3600, payload), sign(now, `${payload} `), 'garbage', `t=${now},v1=zz`]) {
      res = await post('stripe', { 'stripe-signature': bad });
      assert.equal(res.status, 400, bad);
    }
    res = await post('stripe', {});
    assert.equal(res.status, 400);
    const gh = `sha256=${createHmac('sha256', 'gh-secret').update(payload).digest('hex')}`;
    res = await post('github', { 'x-hub-signature-256': gh });
    assert.equal(res.status, 200);
    res = await post('github', { 'x-hub-signature-256': gh.replace(/.$/, '0') === gh ? gh.replace(/.$/, '1') : gh.replace(/.$/, '0') });
    assert.equal(res.status, 401);
  });

  it('reads and writes multipart FormData bodies', async () => {
    await deploy('form', CODE.form);
    const form = new FormData();
    form.append('title', 'report');
    form.append('tag', 'a');
    form.append('tag', 'b');
    form.append('upload', new Blob(['file body ✓'], { type: 'text/plain' }), 'notes.txt');
    const r = await srv.client(srv.anonKey).functions.invoke('form', { body: form });
    assert.equal(r.error, null);
    assert.deepEqual(r.data, {
      title: 'report',
      tags: ['a', 'b'],
      file: { name: 'notes.txt', type: 'text/plain', size: Buffer.byteLength('file body ✓'), text: 'file body ✓' },
    });
    // And a FormData answer, parsed back by the client's own multipart reader.
    const res = await fetch(`${srv.url}/functions/v1/form?echo=1`, { method: 'POST', headers: { Authorization: `Bearer ${srv.anonKey}` }, body: form });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^multipart\/form-data; boundary=/);
    const back = await res.formData();
    assert.equal(back.get('seen'), 'report');
    assert.equal(back.get('copy').name, 'copy.txt');
    assert.equal(await back.get('copy').text(), 'file body ✓');
    // A body that is not multipart at all is the function's error, not a crash.
    const bad = await fetch(`${srv.url}/functions/v1/form`, { method: 'POST', headers: { Authorization: `Bearer ${srv.anonKey}`, 'content-type': 'multipart/form-data; boundary=x' }, body: 'not multipart' });
    assert.equal(bad.status, 500);
    assert.match((await bad.json()).message, /formData/);
  });

  it('streams a ReadableStream response chunk by chunk', async () => {
    await deploy('stream', CODE.stream);
    await deploy('readback', CODE.readback);
    // The function's second chunk waits for this gate, which opens only once the test has
    // read the first chunk: the body must be arriving while the function still runs.
    let firstSeen = false;
    let opened = false;
    let release;
    const gateOpen = new Promise((r) => { release = r; });
    const gate = createServer(async (req, res) => {
      await gateOpen;
      opened = true;
      res.end('go');
    });
    await new Promise((ok) => gate.listen(0, '127.0.0.1', ok));
    try {
      const url = `${srv.url}/functions/v1/stream?gate=${encodeURIComponent(`http://127.0.0.1:${gate.address().port}/`)}`;
      const res = await fetch(url, { headers: { Authorization: `Bearer ${srv.anonKey}` } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!text.includes('first;')) {
        const { value, done } = await reader.read();
        assert.equal(done, false, 'the stream ended before its first chunk');
        text += decoder.decode(value, { stream: true });
      }
      assert.equal(opened, false);
      firstSeen = true;
      release();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      assert.ok(firstSeen);
      assert.equal(text, 'first;second;third');
    } finally {
      release();
      gate.close();
    }
    // An error mid-stream cuts the response short.
    const res = await fetch(`${srv.url}/functions/v1/stream?fail=1`, { headers: { Authorization: `Bearer ${srv.anonKey}` } });
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
    // Streams inside a function read back whole.
    const r = await invoke('readback');
    assert.deepEqual(r.data, { text: 'ab', chunks: [3] });
    // And the server still answers.
    const again = await invoke('readback');
    assert.equal(again.error, null);
  });
});

// A read replica (`serve --follow`) driven by supabase-js: it serves the primary's rows under the
// same policies, publishes the primary's changes to its own realtime subscribers, and refuses
// writes in each API's error shape, naming the primary.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from '@supabase/supabase-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from '../lib/server.js';

const A = 'aaaaaaaa-0000-4000-8000-00000000000a';
const B = 'bbbbbbbb-0000-4000-8000-00000000000b';
const PRIMARY = 'https://primary.example.com';

const SCHEMA = `
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, body TEXT, meta JSONB);
CREATE POLICY "own notes" ON notes FOR SELECT TO authenticated USING (user_id = auth.uid());
ALTER PUBLICATION supabase_realtime ADD TABLE notes;
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function eventually(fn, what, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('read replica', () => {
  let primary;
  let replica;
  let replicaDir;
  const clients = [];
  /** A supabase-js client of the replica, with the primary's keys (they share the secret). */
  const onReplica = (key) => {
    const c = createClient(replica.url, key, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport: WebSocket, params: { eventsPerSecond: 1000 } },
    });
    clients.push(c);
    return c;
  };
  const userToken = (sub) => primary.mintJwt({ sub, role: 'authenticated', aud: 'authenticated' });
  const status = async (srv) => {
    const res = await fetch(`${srv.url}/_/api/replication`, {
      headers: { apikey: primary.serviceKey, Authorization: `Bearer ${primary.serviceKey}` },
    });
    assert.equal(res.status, 200);
    return res.json();
  };
  const subscribe = (channel) =>
    new Promise((resolve, reject) => {
      channel.subscribe((s, err) => {
        if (s === 'SUBSCRIBED') resolve(channel);
        if (s === 'CHANNEL_ERROR' || s === 'TIMED_OUT') reject(err ?? new Error(s));
      });
    });

  before(async () => {
    replicaDir = await mkdtemp(path.join(tmpdir(), 'outpost-replica-'));
    primary = await startServer({
      migrations: { '001_notes.sql': SCHEMA },
      env: { OUTPOST_REPLICA: `file://${replicaDir}`, OUTPOST_REPLICA_SYNC_INTERVAL: '100ms' },
    });
    // The replica restores from what the primary shipped at start.
    await eventually(async () => (await status(primary)).uploaded_txid >= 1, 'the first upload');
    replica = await startServer({
      env: {
        OUTPOST_FOLLOW: `file://${replicaDir}`,
        OUTPOST_FOLLOW_INTERVAL: '100ms',
        OUTPOST_JWT_SECRET: primary.secret,
        OUTPOST_PRIMARY_URL: PRIMARY,
      },
    });
  });

  after(async () => {
    for (const c of clients) await c.removeAllChannels().catch(() => {});
    await replica?.stop();
    await primary?.stop();
    await rm(replicaDir, { recursive: true, force: true });
  });

  it("serves the primary's rows under the same policies", async () => {
    const { error } = await primary.client('service').from('notes').insert([
      { id: 1, user_id: A, body: 'a1', meta: { tags: ['x'] } },
      { id: 2, user_id: B, body: 'b1' },
    ]);
    assert.equal(error, null);
    const svc = onReplica(primary.serviceKey);
    const rows = await eventually(async () => {
      const { data } = await svc.from('notes').select('id, user_id, body, meta').order('id');
      return data?.length === 2 ? data : null;
    }, 'both rows on the replica');
    assert.deepEqual(rows, [
      { id: 1, user_id: A, body: 'a1', meta: { tags: ['x'] } },
      { id: 2, user_id: B, body: 'b1', meta: null },
    ]);
    const asA = onReplica(primary.anonKey);
    const { data: mine } = await asA.from('notes').select('id').setHeader('Authorization', `Bearer ${userToken(A)}`);
    assert.deepEqual(mine, [{ id: 1 }], 'user A sees only their row, as on the primary');
    const { data: anon } = await onReplica(primary.anonKey).from('notes').select('id');
    assert.deepEqual(anon, [], 'anon sees nothing: no policy lets it');
  });

  it('runs the functions and secrets deployed on the primary, under the same policies', async () => {
    const admin = (srv, method, p, body) => fetch(`${srv.url}/_/api${p}`, {
      method,
      headers: { apikey: primary.serviceKey, Authorization: `Bearer ${primary.serviceKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    let res = await admin(primary, 'PUT', '/functions/mynotes', {
      source: `import { db } from 'outpost';
        Deno.serve(async () => {
          const { data, error } = await db.from('notes').select('id').order('id');
          return Response.json({ data, error, greeting: Deno.env.get('GREETING') ?? null });
        });`,
    });
    assert.equal(res.status, 201);
    res = await admin(primary, 'PUT', '/secrets', { GREETING: 'hello from the primary' });
    assert.equal(res.status, 200);
    const asA = onReplica(primary.anonKey);
    const got = await eventually(async () => {
      const r = await fetch(`${replica.url}/functions/v1/mynotes`, { headers: { Authorization: `Bearer ${userToken(A)}` } });
      if (r.status !== 200) return null;
      const body = await r.json();
      return body.greeting ? body : null;
    }, 'the function and its secret on the replica');
    assert.deepEqual(got, { data: [{ id: 1 }], error: null, greeting: 'hello from the primary' });
    const viaClient = await asA.functions.invoke('mynotes', { headers: { Authorization: `Bearer ${userToken(B)}` } });
    assert.deepEqual(viaClient.data.data, [{ id: 2 }]);
    // Deploying is a write: the replica refuses it.
    res = await admin(replica, 'PUT', '/functions/other', { source: 'Deno.serve(() => new Response("x"))' });
    assert.equal(res.status, 405);
    assert.equal((await res.json()).code, 'read_only_replica');
  });

  it('refuses writes in each API, naming the primary, and changes nothing', async () => {
    const svc = onReplica(primary.serviceKey);
    const ins = await svc.from('notes').insert({ id: 99, user_id: A, body: 'x' });
    assert.equal(ins.status, 405);
    assert.equal(ins.error.code, '25006');
    assert.match(ins.error.message, /read replica/);
    assert.ok(ins.error.message.includes(PRIMARY), ins.error.message);
    const upd = await svc.from('notes').update({ body: 'changed' }).eq('id', 1);
    assert.equal(upd.status, 405);
    const del = await svc.from('notes').delete().eq('id', 1);
    assert.equal(del.status, 405);

    const signUp = await onReplica(primary.anonKey).auth.signUp({ email: 'r@example.com', password: 'correct horse 1' });
    assert.equal(signUp.error?.status, 405);
    assert.equal(signUp.error?.code, 'read_only_replica');

    // A bucket made on the primary reaches the replica; uploading into it there is refused.
    assert.equal((await primary.client('service').storage.createBucket('docs')).error, null);
    await eventually(async () => !(await svc.storage.getBucket('docs')).error, 'the bucket on the replica');
    const up = await svc.storage.from('docs').upload('a.txt', 'hello', { contentType: 'text/plain' });
    assert.ok(up.error, 'the upload failed');
    assert.match(up.error.message, /read replica/);
    const { data: objects } = await primary.client('service').storage.from('docs').list();
    assert.deepEqual(objects, [], 'no object reached the primary');

    const { data } = await primary.client('service').from('notes').select('id, body').order('id');
    assert.deepEqual(data, [{ id: 1, body: 'a1' }, { id: 2, body: 'b1' }], 'nothing reached the primary');
  });

  it("publishes the primary's changes to the replica's realtime subscribers, under policies", async () => {
    const all = [];
    const forA = [];
    const forB = [];
    await subscribe(
      onReplica(primary.serviceKey)
        .channel('replica-all')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'notes' }, (p) => all.push(p)),
    );
    const a = onReplica(primary.anonKey);
    await a.realtime.setAuth(userToken(A));
    await subscribe(a.channel('replica-a').on('postgres_changes', { event: '*', schema: 'public', table: 'notes' }, (p) => forA.push(p)));
    const b = onReplica(primary.anonKey);
    await b.realtime.setAuth(userToken(B));
    await subscribe(b.channel('replica-b').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => forB.push(p)));

    const svc = primary.client('service');
    assert.equal((await svc.from('notes').insert({ id: 10, user_id: A, body: 'new', meta: { n: 1 } })).error, null);
    assert.equal((await svc.from('notes').update({ body: 'edited' }).eq('id', 10)).error, null);
    assert.equal((await svc.from('notes').delete().eq('id', 10)).error, null);

    await eventually(() => all.length >= 3, 'three events on the replica');
    await sleep(300);
    assert.deepEqual(all.map((p) => p.eventType), ['INSERT', 'UPDATE', 'DELETE']);
    assert.deepEqual(all[0].new, { id: 10, user_id: A, body: 'new', meta: { n: 1 } });
    assert.equal(all[1].new.body, 'edited');
    assert.deepEqual(all[2].old, { id: 10 });
    assert.ok(!Number.isNaN(Date.parse(all[0].commit_timestamp)));
    await eventually(() => forA.length >= 2, "user A's events");
    assert.deepEqual(forA.slice(0, 2).map((p) => p.eventType), ['INSERT', 'UPDATE']);
    assert.deepEqual(forB, [], "user B's policy hides user A's row");
  });

  it('reports its role, TXID and lag, and catches up with the primary', async () => {
    const p = await status(primary);
    assert.equal(p.role, 'primary');
    const r = await eventually(async () => {
      const s = await status(replica);
      return s.txid >= p.txid ? s : null;
    }, "the replica reaching the primary's TXID");
    assert.equal(r.role, 'replica');
    assert.equal(r.primary_url, PRIMARY);
    const health = await (await fetch(`${replica.url}/health`)).json();
    assert.equal(health.replication.role, 'replica');
    assert.match(health.replication.txid, /^[0-9a-f]{16}$/);
    assert.equal(typeof health.replication.lag_seconds, 'number');
    const metrics = await (await fetch(`${replica.url}/metrics`)).text();
    assert.match(metrics, /outpost_replication_lag_seconds\{role="replica"\} [0-9.]+/);
  });
});

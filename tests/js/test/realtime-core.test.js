// Realtime through supabase-js (with `ws` as its WebSocket) and raw Phoenix frames.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from '@supabase/supabase-js';
import { startServer } from '../lib/server.js';

const A = 'aaaaaaaa-0000-4000-8000-00000000000a';
const B = 'bbbbbbbb-0000-4000-8000-00000000000b';

const SCHEMA = `
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  user_id TEXT,
  n INTEGER,
  status TEXT,
  done BOOLEAN NOT NULL DEFAULT false,
  meta JSONB
);
CREATE POLICY "own notes" ON notes FOR SELECT TO authenticated USING (user_id = auth.uid());
ALTER PUBLICATION supabase_realtime ADD TABLE notes;
CREATE TABLE open_items (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
ALTER TABLE open_items DISABLE ROW LEVEL SECURITY;
ALTER TABLE open_items REPLICA IDENTITY FULL;
ALTER PUBLICATION supabase_realtime ADD TABLE open_items;
CREATE TABLE unpublished (id INTEGER PRIMARY KEY, v TEXT);
ALTER TABLE unpublished DISABLE ROW LEVEL SECURITY;
CREATE POLICY "members read vip" ON realtime.messages FOR SELECT TO authenticated
  USING (realtime.topic() = 'vip');
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, what, ms = 4000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('realtime', () => {
  let srv;
  const clients = [];
  const rt = (key) => {
    const c = createClient(srv.url, key, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport: WebSocket, params: { eventsPerSecond: 1000 } },
    });
    clients.push(c);
    return c;
  };
  /** A client whose channels join with a user's access token. */
  const rtUser = async (token) => {
    const c = rt(srv.anonKey);
    await c.realtime.setAuth(token);
    return c;
  };
  const subscribe = (channel) =>
    new Promise((resolve, reject) => {
      channel.subscribe((status, err) => {
        if (status === 'SUBSCRIBED') resolve(channel);
        if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(status));
      });
    });
  const userToken = (sub, extra = {}) => srv.mintJwt({ sub, role: 'authenticated', aud: 'authenticated', ...extra });

  before(async () => {
    srv = await startServer({ migrations: { '001_rt.sql': SCHEMA } });
  });
  after(async () => {
    for (const c of clients) await c.removeAllChannels().catch(() => {});
    await srv.stop();
  });

  it('answers heartbeats and speaks vsn 1.0.0 object frames', async () => {
    for (const [vsn, frame, check] of [
      ['2.0.0', '[null,"1","phoenix","heartbeat",{}]', (m) => assert.deepEqual(m, [null, '1', 'phoenix', 'phx_reply', { status: 'ok', response: {} }])],
      ['1.0.0', '{"topic":"realtime:x","event":"phx_join","payload":{"config":{}},"ref":"5","join_ref":"5"}', (m) => {
        assert.equal(m.event, 'phx_reply');
        assert.equal(m.ref, '5');
        assert.equal(m.payload.status, 'ok');
      }],
    ]) {
      const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${srv.anonKey}&vsn=${vsn}`);
      const first = new Promise((resolve, reject) => {
        ws.on('message', (d) => resolve(JSON.parse(d.toString())));
        ws.on('error', reject);
      });
      await new Promise((r) => ws.on('open', r));
      ws.send(frame);
      check(await first);
      ws.terminate();
    }
    // A bad key is refused before the upgrade.
    const bad = new WebSocket(`${srv.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=nope&vsn=2.0.0`);
    const status = await new Promise((resolve) => bad.on('unexpected-response', (_req, res) => resolve(res.statusCode)));
    assert.equal(status, 403);
  });

  it('delivers inserts, updates and deletes after commit, with types and filters', async () => {
    const svc = srv.client('service');
    const all = [];
    const inserts = [];
    const filtered = [];
    const c = rt(srv.serviceKey);
    await subscribe(
      c.channel('notes-all')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'notes' }, (p) => all.push(p))
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => inserts.push(p))
        .on('postgres_changes', { event: '*', schema: 'public', table: 'notes', filter: 'status=in.(open,urgent)' }, (p) => filtered.push(p)),
    );
    const { error } = await svc.from('notes').insert({ id: 1, user_id: A, n: 1, status: 'open', done: true, meta: { k: [1] } });
    assert.equal(error, null);
    await svc.from('notes').update({ n: 2, status: 'closed' }).eq('id', 1);
    await svc.from('notes').delete().eq('id', 1);
    await svc.from('unpublished').insert({ id: 1, v: 'x' });
    await waitFor(() => all.length >= 3, 'three changes');
    await sleep(200);
    assert.deepEqual(all.map((p) => p.eventType), ['INSERT', 'UPDATE', 'DELETE']);
    const [ins, upd, del] = all;
    assert.equal(ins.schema, 'public');
    assert.equal(ins.table, 'notes');
    assert.ok(!Number.isNaN(Date.parse(ins.commit_timestamp)));
    assert.deepEqual(ins.new, { id: 1, user_id: A, n: 1, status: 'open', done: true, meta: { k: [1] } });
    assert.equal(upd.new.n, 2);
    assert.deepEqual(upd.old, { id: 1 }, 'RLS table: old rows carry the primary key');
    assert.deepEqual(del.old, { id: 1 });
    assert.equal(inserts.length, 1, 'the INSERT binding gets inserts only');
    assert.deepEqual(filtered.map((p) => p.eventType), ['INSERT'], 'status=in.(open,urgent) matched the insert only');
  });

  it('sends whole old rows for REPLICA IDENTITY FULL tables without policies', async () => {
    const svc = srv.client('service');
    const got = [];
    const c = rt(srv.anonKey);
    await subscribe(c.channel('open').on('postgres_changes', { event: '*', schema: 'public', table: 'open_items', filter: 'id=gte.10' }, (p) => got.push(p)));
    await svc.from('open_items').insert([{ id: 5, label: 'low' }, { id: 10, label: 'a' }]);
    await svc.from('open_items').update({ label: 'b' }).eq('id', 10);
    await svc.from('open_items').delete().eq('id', 10);
    await waitFor(() => got.length >= 3, 'open_items changes');
    assert.deepEqual(got.map((p) => p.eventType), ['INSERT', 'UPDATE', 'DELETE']);
    assert.deepEqual(got[1].old, { id: 10, label: 'a' });
    assert.deepEqual(got[2].old, { id: 10, label: 'b' });
  });

  it('applies row-level security per subscriber', async () => {
    const seen = { a: [], b: [], anon: [] };
    for (const [who, token] of [['a', userToken(A)], ['b', userToken(B)], ['anon', null]]) {
      const c = token ? await rtUser(token) : rt(srv.anonKey);
      await subscribe(c.channel(`rls-${who}`).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => seen[who].push(p.new.id)));
    }
    const svc = srv.client('service');
    await svc.from('notes').insert([{ id: 20, user_id: A }, { id: 21, user_id: B }, { id: 22, user_id: A }]);
    await waitFor(() => seen.a.length >= 2 && seen.b.length >= 1, 'per-user changes');
    await sleep(300);
    assert.deepEqual(seen.a, [20, 22]);
    assert.deepEqual(seen.b, [21]);
    assert.deepEqual(seen.anon, [], 'anon has no policy: nothing');
  });

  it('never sends rolled-back writes and keeps commit order under concurrency', async () => {
    const got = [];
    const c = rt(srv.serviceKey);
    await subscribe(c.channel('order').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'open_items' }, (p) => got.push(p.new.id)));
    const rolled = await fetch(`${srv.url}/rest/v1/open_items`, {
      method: 'POST',
      headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}`, 'Content-Type': 'application/json', Prefer: 'tx=rollback' },
      body: JSON.stringify({ id: 999, label: 'never' }),
    });
    assert.equal(rolled.status, 201);
    // A failing insert (NOT NULL) in the same moment as good ones.
    const svc = srv.client('service');
    const writes = [];
    for (let i = 0; i < 30; i++) writes.push(svc.from('open_items').insert({ label: `x${i}` }));
    writes.push(svc.from('open_items').insert({ id: 998, label: null }));
    const results = await Promise.all(writes);
    assert.equal(results.filter((r) => r.error).length, 1);
    await waitFor(() => got.length >= 30, '30 inserts');
    await sleep(300);
    assert.equal(got.length, 30, 'each committed insert once, nothing else');
    assert.ok(!got.includes(999) && !got.includes(998));
    assert.deepEqual(got, [...got].sort((x, y) => x - y), 'commit order (ids increase)');
  });

  it('broadcasts between clients with self, ack and the REST endpoint', async () => {
    const recvA = [];
    const recvB = [];
    const a = rt(srv.anonKey).channel('chat', { config: { broadcast: { self: true, ack: true } } });
    a.on('broadcast', { event: 'msg' }, (p) => recvA.push(p.payload));
    const b = rt(srv.anonKey).channel('chat');
    b.on('broadcast', { event: 'msg' }, (p) => recvB.push(p.payload));
    await subscribe(a);
    await subscribe(b);
    assert.equal(await a.send({ type: 'broadcast', event: 'msg', payload: { from: 'a' } }), 'ok');
    const res = await fetch(`${srv.url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: srv.anonKey, Authorization: `Bearer ${srv.anonKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic: 'chat', event: 'msg', payload: { from: 'rest' } }] }),
    });
    assert.equal(res.status, 202);
    await waitFor(() => recvB.length >= 2 && recvA.length >= 2, 'broadcasts');
    assert.deepEqual(recvB, [{ from: 'a' }, { from: 'rest' }]);
    assert.deepEqual(recvA, [{ from: 'a' }, { from: 'rest' }], 'self: true echoes to the sender');
    const bad = await fetch(`${srv.url}/realtime/v1/api/broadcast`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(bad.status, 401);
  });

  it('tracks presence and drops a socket that disappears', async () => {
    const watcher = rt(srv.anonKey).channel('lobby', { config: { presence: { key: 'watcher' } } });
    await subscribe(watcher);
    const leaver = rt(srv.anonKey);
    const ch = leaver.channel('lobby', { config: { presence: { key: 'ada' } } });
    await subscribe(ch);
    assert.equal(await ch.track({ name: 'Ada' }), 'ok');
    await waitFor(() => watcher.presenceState().ada?.[0]?.name === 'Ada', 'ada joins');
    // No phx_leave, no close frame: the TCP connection just goes.
    leaver.realtime.socketAdapter.socket.conn.terminate();
    await waitFor(() => !watcher.presenceState().ada, 'ada leaves after the socket drops');
  });

  it('reconnects and rejoins after the connection drops', async () => {
    const got = [];
    const c = rt(srv.serviceKey);
    const ch = c.channel('rejoin').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'open_items' }, (p) => got.push(p.new.label));
    await subscribe(ch);
    c.realtime.socketAdapter.socket.conn.terminate();
    await waitFor(() => ch.state !== 'joined', 'the channel to notice the drop');
    await waitFor(() => ch.state === 'joined', 'the client to reconnect and rejoin', 8000);
    await srv.client('service').from('open_items').insert({ label: 'after-rejoin' });
    await waitFor(() => got.includes('after-rejoin'), 'a change after the rejoin');
  });

  it('closes a channel whose token expires', async () => {
    const got = [];
    const exp = Math.floor(Date.now() / 1000) + 2;
    const c = await rtUser(userToken(A, { exp }));
    const ch = c.channel('expiring').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => got.push(p));
    await subscribe(ch);
    await waitFor(() => ch.state !== 'joined', 'the channel to close', 6000);
    await srv.client('service').from('notes').insert({ id: 40, user_id: A });
    await sleep(400);
    assert.equal(got.length, 0);
  });

  it('admits private channels only where a policy on realtime.messages allows', async () => {
    await subscribe((await rtUser(userToken(A))).channel('vip', { config: { private: true } }));
    await assert.rejects(subscribe((await rtUser(userToken(A))).channel('other', { config: { private: true } })));
    await assert.rejects(subscribe(rt(srv.anonKey).channel('vip', { config: { private: true } })), 'anon has no policy');
  });

  it('refuses bad bindings with a channel error', async () => {
    const c = rt(srv.anonKey);
    await assert.rejects(subscribe(c.channel('bad').on('postgres_changes', { event: '*', schema: 'public', table: 'notes', filter: 'n=like.5' }, () => {})));
  });
});

describe('realtime limits', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      env: {
        OUTPOST_REALTIME_MAX_CONNECTIONS: '3',
        OUTPOST_REALTIME_MAX_CHANNELS: '1',
        OUTPOST_REALTIME_MAX_MESSAGE_BYTES: '65536',
        OUTPOST_REALTIME_QUEUE: '64',
      },
    });
  });
  after(async () => srv.stop());

  const open = (vsn = '2.0.0') =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${srv.anonKey}&vsn=${vsn}`);
      const inbox = [];
      // Broadcasts arrive as binary frames (kind 4); the rest are JSON arrays.
      ws.on('message', (d, isBinary) => inbox.push(isBinary ? ['binary', null, null, 'broadcast', d] : JSON.parse(d.toString())));
      ws.on('open', () => resolve({ ws, inbox }));
      ws.on('unexpected-response', (_q, res) => reject(Object.assign(new Error('refused'), { status: res.statusCode })));
      ws.on('error', () => {});
    });
  const join = async (s, topic, ref) => {
    s.ws.send(JSON.stringify([ref, ref, topic, 'phx_join', { config: { broadcast: { self: false } } }]));
    return waitFor(() => s.inbox.find((m) => m[1] === ref && m[3] === 'phx_reply'), `reply to ${ref}`);
  };

  it('limits channels per socket, message size, and connections', async () => {
    const a = await open();
    assert.equal((await join(a, 'realtime:one', '1'))[4].status, 'ok');
    const second = await join(a, 'realtime:two', '2');
    assert.equal(second[4].status, 'error');
    assert.match(second[4].response.reason, /Too many channels/);
    // A frame over the limit closes the socket with 1009 (message too big).
    const closed = new Promise((resolve) => a.ws.on('close', (code) => resolve(code)));
    a.ws.send(JSON.stringify(['1', '3', 'realtime:one', 'broadcast', { type: 'broadcast', event: 'e', payload: 'x'.repeat(70000) }]));
    assert.equal(await closed, 1009);
    const held = [await open(), await open(), await open()];
    await assert.rejects(open(), (e) => e.status === 503);
    for (const s of held) s.ws.terminate();
  });

  it('cuts off a client that stops reading instead of queueing without bound', async () => {
    await sleep(300); // the sockets of the previous test are gone
    const slow = await open();
    await join(slow, 'realtime:flood', '1');
    const closed = new Promise((resolve) => slow.ws.on('close', (code) => resolve(code)));
    slow.ws._socket.pause();
    const fast = await open();
    await join(fast, 'realtime:flood', '1');
    const big = 'y'.repeat(20000);
    for (let i = 0; i < 800; i++) {
      fast.ws.send(JSON.stringify(['1', String(i + 2), 'realtime:flood', 'broadcast', { type: 'broadcast', event: 'e', payload: big }]));
      // A well-behaved sender reads its replies as it goes.
      if (i % 20 === 19) await waitFor(() => fast.inbox.filter((m) => m[3] === 'phx_reply').length >= i, 'replies so far');
    }
    slow.ws._socket.resume();
    assert.equal(await closed, 1008);
    // The sender was never held up: it got its replies.
    await waitFor(() => fast.inbox.filter((m) => m[3] === 'phx_reply').length >= 800, 'the sender\'s replies', 8000);
    fast.ws.terminate();
  });
});

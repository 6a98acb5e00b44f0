// Realtime (/realtime/v1/websocket) driven by the real supabase-js 2.119.1 (realtime-js over the
// `ws` package) and by raw Phoenix frames: wire protocol (heartbeat, vsn 1.0.0 / 2.0.0 frames,
// join replies, postgres_changes frames), postgres_changes (payload fields and types, event /
// table / schema bindings, filters, replica identity, publication, RLS, rollback, commit order),
// channel lifecycle (leave, heartbeats, reconnect), tokens (setAuth, expiry, refresh), broadcast
// (socket, self, ack, REST, send() fallback), presence, private channels and the message-size
// limit. Reference: /work/shared/reference/supabase-protocol.md §5.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rest } from '../lib/server.js';
import {
  realtimeKit,
  subscribed,
  assertJoinRefused,
  collector,
  killSocket,
  encodeBroadcastPush,
  until,
  sleep,
  nowSec,
} from '../lib/realtime.js';

const A = 'aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa';
const B = 'bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb';
const C = 'cccccccc-3333-4333-8333-cccccccccccc';
const D = 'dddddddd-4444-4444-8444-dddddddddddd';

const SCHEMA = `
CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id UUID,
  room TEXT,
  body TEXT,
  n INTEGER,
  big BIGINT,
  done BOOLEAN NOT NULL DEFAULT false,
  meta JSONB,
  price NUMERIC,
  ratio DOUBLE PRECISION,
  created_at TIMESTAMPTZ DEFAULT (now())
);
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY "read own" ON messages FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY "write own" ON messages FOR INSERT TO authenticated WITH CHECK (user_id = auth.uid());
CREATE POLICY "update own" ON messages FOR UPDATE TO authenticated USING (user_id = auth.uid());
ALTER PUBLICATION supabase_realtime ADD TABLE messages;

-- No RLS, whole old rows.
CREATE TABLE items (id INTEGER PRIMARY KEY, owner TEXT, n INTEGER, status TEXT, label TEXT);
ALTER TABLE items DISABLE ROW LEVEL SECURITY;
ALTER TABLE items REPLICA IDENTITY FULL;
ALTER PUBLICATION supabase_realtime ADD TABLE items;

-- No RLS, default replica identity (old rows carry the primary key).
CREATE TABLE plain (id INTEGER PRIMARY KEY, label TEXT);
ALTER TABLE plain DISABLE ROW LEVEL SECURITY;
ALTER PUBLICATION supabase_realtime ADD TABLE plain;

-- RLS and REPLICA IDENTITY FULL: policy-bound subscribers still get only the key of old rows.
CREATE TABLE secrets (id INTEGER PRIMARY KEY, user_id UUID, body TEXT);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY "read own secrets" ON secrets FOR SELECT TO authenticated USING (user_id = auth.uid());
ALTER TABLE secrets REPLICA IDENTITY FULL;
ALTER PUBLICATION supabase_realtime ADD TABLE secrets;

-- Never published.
CREATE TABLE hidden (id INTEGER PRIMARY KEY, label TEXT);
ALTER TABLE hidden DISABLE ROW LEVEL SECURITY;

-- Concurrent writers.
CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, writer TEXT NOT NULL, k INTEGER NOT NULL);
ALTER TABLE seq ENABLE ROW LEVEL SECURITY;
CREATE POLICY "read seq" ON seq FOR SELECT TO authenticated USING (true);
CREATE POLICY "write seq" ON seq FOR INSERT TO authenticated WITH CHECK (true);
ALTER PUBLICATION supabase_realtime ADD TABLE seq;

-- Cascades.
CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT);
ALTER TABLE parents DISABLE ROW LEVEL SECURITY;
CREATE TABLE children (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents(id) ON DELETE CASCADE, label TEXT);
ALTER TABLE children DISABLE ROW LEVEL SECURITY;
ALTER PUBLICATION supabase_realtime ADD TABLE parents;
ALTER PUBLICATION supabase_realtime ADD TABLE children;

-- Policies with a subquery and a boolean column; a composite primary key.
CREATE TABLE members (team_id INTEGER NOT NULL, user_id UUID NOT NULL, PRIMARY KEY (team_id, user_id));
ALTER TABLE members DISABLE ROW LEVEL SECURITY;
ALTER PUBLICATION supabase_realtime ADD TABLE members;
CREATE TABLE team_posts (id INTEGER PRIMARY KEY, team_id INTEGER NOT NULL, body TEXT, published BOOLEAN NOT NULL DEFAULT false);
ALTER TABLE team_posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "team members read" ON team_posts FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM members m WHERE m.team_id = team_posts.team_id AND m.user_id = auth.uid()));
CREATE POLICY "anyone reads published" ON team_posts FOR SELECT TO anon USING (published);
ALTER PUBLICATION supabase_realtime ADD TABLE team_posts;

-- Writes through RPC.
CREATE FUNCTION add_plain(pid int, plabel text) RETURNS plain SECURITY DEFINER AS $$ INSERT INTO plain (id, label) VALUES (:pid, :plabel) RETURNING * $$;

-- Private channels.
CREATE POLICY "private read" ON realtime.messages FOR SELECT TO authenticated
  USING (realtime.topic() = 'vip' OR realtime.topic() = 'readonly' OR realtime.topic() = 'user:' || auth.uid());
CREATE POLICY "private write" ON realtime.messages FOR INSERT TO authenticated
  WITH CHECK (realtime.topic() = 'vip');
`;

// A table published, then taken out of the publication by a later migration.
const DROPPED_1 = `
CREATE TABLE dropped (id INTEGER PRIMARY KEY, label TEXT);
ALTER TABLE dropped DISABLE ROW LEVEL SECURITY;
ALTER PUBLICATION supabase_realtime ADD TABLE dropped;
`;
const DROPPED_2 = 'ALTER PUBLICATION supabase_realtime DROP TABLE dropped;\n';

const ok = (res, ctx) => {
  assert.equal(res.error, null, `${ctx}: ${JSON.stringify(res.error)}`);
  return res.data;
};

describe('realtime', () => {
  let srv;
  let rt;
  let svc; // REST-only service client

  before(async () => {
    srv = await startServer({
      migrations: { '001_schema.sql': SCHEMA, '002_dropped.sql': DROPPED_1, '003_unpublish.sql': DROPPED_2 },
    });
    rt = realtimeKit(srv);
    svc = srv.client('service');
  });
  after(async () => {
    await rt?.closeAll();
    await srv?.stop();
  });

  const pg = (event, table, extra = {}) => ({ event, schema: 'public', ...(table ? { table } : {}), ...extra });

  // ---------------------------------------------------------------------------------------------
  describe('wire protocol', () => {
    it('answers a vsn 2.0.0 heartbeat with an ok phx_reply', async () => {
      const s = await rt.raw();
      s.send('[null,"1","phoenix","heartbeat",{}]');
      const reply = await s.reply('1');
      assert.deepEqual(reply, [null, '1', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
      s.send([null, 'hb-77', 'phoenix', 'heartbeat', {}]);
      assert.deepEqual(await s.reply('hb-77'), [null, 'hb-77', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
      s.close();
    });

    it('refuses the upgrade without a valid apikey', async () => {
      for (const apikey of [null, 'not-a-jwt', srv.mintJwt({ role: 'anon', exp: nowSec() - 60 })]) {
        await assert.rejects(rt.raw({ apikey }), (e) => e.status >= 400 && e.status < 500, `apikey ${apikey}`);
      }
    });

    it('speaks vsn 1.0.0 object frames: heartbeat, join, broadcast', async () => {
      const s = await rt.raw({ vsn: '1.0.0' });
      s.send({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1' });
      const hb = await s.next((m) => m.ref === '1');
      assert.ok(!Array.isArray(hb), `vsn 1.0.0 replies are objects, got ${JSON.stringify(hb)}`);
      assert.deepEqual(
        { topic: hb.topic, event: hb.event, payload: hb.payload, ref: hb.ref },
        { topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: '1' },
      );
      s.send({ topic: 'realtime:v1-room', event: 'phx_join', payload: { config: { broadcast: { self: true } } }, ref: '2', join_ref: '2' });
      const join = await s.next((m) => m.ref === '2');
      assert.ok(!Array.isArray(join), `join reply must be an object: ${JSON.stringify(join)}`);
      assert.equal(join.topic, 'realtime:v1-room');
      assert.equal(join.event, 'phx_reply');
      assert.equal(join.payload.status, 'ok', JSON.stringify(join));
      assert.equal(join.join_ref, '2');
      s.send({
        topic: 'realtime:v1-room',
        event: 'broadcast',
        payload: { type: 'broadcast', event: 'ping', payload: { n: 1 } },
        ref: '3',
        join_ref: '2',
      });
      const echoed = await s.next((m) => m.event === 'broadcast');
      assert.ok(!echoed.binary, 'a vsn 1.0.0 socket cannot decode binary frames; broadcasts must come as JSON objects');
      assert.ok(!Array.isArray(echoed));
      assert.equal(echoed.topic, 'realtime:v1-room');
      assert.deepEqual(echoed.payload, { type: 'broadcast', event: 'ping', payload: { n: 1 } });
      assert.ok(s.inbox.every((m) => !Array.isArray(m) && !m.binary), `only object frames: ${JSON.stringify(s.inbox)}`);
      s.close();
    });

    it('echoes postgres_changes bindings in order with ids and sends changes in the documented frame', async () => {
      const s = await rt.raw({ apikey: srv.serviceKey });
      const bindings = [
        { event: 'INSERT', schema: 'public', table: 'messages' },
        { event: '*', schema: 'public', table: 'items', filter: 'id=eq.1' },
        { event: '*', schema: 'public' },
      ];
      const reply = await s.join('realtime:wire-changes', '1', {
        config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: bindings, private: false },
      });
      assert.equal(reply[0], '1', 'join_ref of the reply');
      assert.equal(reply[2], 'realtime:wire-changes');
      assert.equal(reply[4].status, 'ok', JSON.stringify(reply));
      const echoed = reply[4].response.postgres_changes;
      assert.equal(echoed.length, 3, JSON.stringify(echoed));
      bindings.forEach((b, i) => {
        assert.equal(echoed[i].event, b.event, `binding ${i}`);
        assert.equal(echoed[i].schema, b.schema, `binding ${i}`);
        assert.equal(echoed[i].table ?? undefined, b.table, `binding ${i}`);
        assert.equal(echoed[i].filter ?? undefined, b.filter, `binding ${i}`);
        assert.ok(['number', 'string'].includes(typeof echoed[i].id), `binding ${i} id`);
      });
      assert.equal(new Set(echoed.map((b) => b.id)).size, 3, 'binding ids are distinct');
      const sys = await s.next((m) => m[3] === 'system');
      assert.equal(sys[2], 'realtime:wire-changes');
      assert.equal(sys[4].extension, 'postgres_changes');
      assert.equal(sys[4].status, 'ok');

      const row = ok(
        await svc.from('messages').insert({ user_id: A, room: 'wire', body: 'hi', n: 3, big: 1234567890123, done: true, meta: { a: [1, 2] }, price: 9.5, ratio: 0.25 }).select().single(),
        'insert',
      );
      const f = await s.next((m) => m[3] === 'postgres_changes');
      assert.equal(f.length, 5);
      assert.ok(f[0] === '1' || f[0] === null, `join_ref is the channel's or null: ${JSON.stringify(f[0])}`);
      assert.equal(f[1], null, 'server pushes carry no ref');
      assert.equal(f[2], 'realtime:wire-changes');
      const { ids, data } = f[4];
      assert.deepEqual([...ids].sort(), [echoed[0].id, echoed[2].id].sort(), 'ids: the INSERT and schema-wide bindings, not the items one');
      assert.equal(data.schema, 'public');
      assert.equal(data.table, 'messages');
      assert.equal(data.type, 'INSERT');
      assert.equal(data.errors, null);
      const ts = Date.parse(data.commit_timestamp);
      assert.ok(Math.abs(ts - Date.now()) < 60_000, `commit_timestamp ${data.commit_timestamp}`);
      const types = Object.fromEntries(data.columns.map((c) => [c.name, c.type]));
      assert.deepEqual(Object.keys(types).sort(), Object.keys(row).sort(), 'one column entry per column');
      const want = {
        user_id: ['uuid'], room: ['text'], body: ['text'], n: ['int4', 'int8'], big: ['int8'], done: ['bool'],
        meta: ['jsonb'], price: ['numeric'], ratio: ['float8'], created_at: ['timestamptz'], id: ['int4', 'int8'],
      };
      for (const [col, allowed] of Object.entries(want)) {
        assert.ok(allowed.includes(types[col]), `column ${col}: type ${types[col]}, want one of ${allowed}`);
      }
      assert.equal(data.record.id, row.id);
      assert.equal(data.record.user_id, A);
      assert.equal(data.record.body, 'hi');
      assert.ok(data.old_record === null || Object.keys(data.old_record).length === 0, `INSERT has no old record: ${JSON.stringify(data.old_record)}`);
      s.close();
    });

    it('refuses joins with an invalid or expired access_token; reports a malformed binding', async () => {
      const s = await rt.raw();
      const good = rt.userJwt(A);
      const [h, p, sig] = good.split('.');
      const tampered = `${h}.${p}.${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`;
      let ref = 10;
      for (const [what, token] of [
        ['bad signature', tampered],
        ['garbage', 'garbage'],
        ['expired', rt.userJwt(A, { exp: nowSec() - 30 })],
      ]) {
        ref += 1;
        const r = await s.join(`realtime:refused-${ref}`, String(ref), { config: {}, access_token: token });
        assert.equal(r[4].status, 'error', `${what}: ${JSON.stringify(r)}`);
        assert.equal(typeof r[4].response?.reason, 'string', `${what}: error replies carry a reason: ${JSON.stringify(r)}`);
      }
      // A binding the server cannot serve: an error reply (Outpost, or Supabase with
      // postgres_changes_options.wait), or an ok reply and then a postgres_changes system error
      // (Supabase without wait). Never a silent ok.
      for (const [what, binding] of [
        ['like filter', { event: '*', schema: 'public', table: 'items', filter: 'n=like.5' }],
        ['bad event', { event: 'TRUNCATE_ALL', schema: 'public', table: 'items' }],
      ]) {
        ref += 1;
        const topic = `realtime:refused-${ref}`;
        const r = await s.join(topic, String(ref), { config: { postgres_changes: [binding] } });
        if (r[4].status !== 'error') {
          assert.equal(r[4].status, 'ok', `${what}: ${JSON.stringify(r)}`);
          const sys = await s.next((m) => m[2] === topic && m[3] === 'system' && m[4]?.status === 'error', 3000, `${what}: a system error`);
          assert.equal(sys[4].extension, 'postgres_changes');
        }
      }
      // The socket is still usable.
      const fine = await s.join('realtime:after-refusals', '99', { config: {}, access_token: good });
      assert.equal(fine[4].status, 'ok');
      s.close();
    });

    it('replies ok to phx_leave and stops delivering to the left topic', async () => {
      const s = await rt.raw();
      const other = await rt.raw();
      assert.equal((await s.join('realtime:leave-me', '1', { config: { broadcast: { self: false } } }))[4].status, 'ok');
      assert.equal((await other.join('realtime:leave-me', '1', { config: { broadcast: { self: false } } }))[4].status, 'ok');
      s.send(['1', '2', 'realtime:leave-me', 'phx_leave', {}]);
      const left = await s.reply('2');
      assert.equal(left[4].status, 'ok');
      other.send(['1', '3', 'realtime:leave-me', 'broadcast', { type: 'broadcast', event: 'e', payload: { after: 'leave' } }]);
      await other.reply('3');
      await sleep(300);
      assert.equal(s.inbox.filter((m) => m.binary || m[3] === 'broadcast').length, 0, `no broadcast after leaving: ${JSON.stringify(s.inbox)}`);
      s.close();
      other.close();
    });

    it('relays a binary broadcast push (kind 3) to another vsn 2.0.0 socket', async () => {
      const a = await rt.raw();
      const b = await rt.raw();
      await a.join('realtime:bin', '1', { config: { broadcast: { self: false } } });
      await b.join('realtime:bin', '1', { config: { broadcast: { self: false } } });
      a.send(encodeBroadcastPush('1', '2', 'realtime:bin', 'cursor', { x: 1, y: [2, 3] }));
      const replied = await a.reply('2');
      assert.equal(replied[4].status, 'ok');
      const got = await b.next((m) => m.binary || m[3] === 'broadcast');
      if (got.binary) {
        assert.equal(got.kind, 4, 'server→client binary frames must be kind 4');
        assert.equal(got.topic, 'realtime:bin');
        assert.equal(got.event, 'cursor');
        assert.deepEqual(got.payload, { x: 1, y: [2, 3] });
      } else {
        assert.equal(got[2], 'realtime:bin');
        assert.deepEqual(got[4], { type: 'broadcast', event: 'cursor', payload: { x: 1, y: [2, 3] } });
      }
      a.close();
      b.close();
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('postgres_changes', () => {
    it('delivers INSERT, UPDATE and DELETE with schema, table, commit_timestamp, eventType, typed new/old', async () => {
      const c = await rt.client({ key: srv.serviceKey });
      const ev = collector('messages *');
      await subscribed(c.channel('pc-basic').on('postgres_changes', pg('*', 'messages', { filter: 'room=eq.basic' }), ev.push));
      const before = Date.now();
      const row = ok(
        await svc
          .from('messages')
          .insert({ user_id: A, room: 'basic', body: 'first', n: 7, big: 1234567890123, done: true, meta: { tags: ['x'], deep: { k: 1 } }, price: 12.5, ratio: 0.125 })
          .select()
          .single(),
        'insert',
      );
      ok(await svc.from('messages').update({ body: 'second', done: false, n: 8 }).eq('id', row.id), 'update');
      ok(await svc.from('messages').delete().eq('id', row.id), 'delete');
      const [ins, upd, del] = await ev.waitForCount(3);
      assert.deepEqual([ins, upd, del].map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE']);
      for (const e of [ins, upd, del]) {
        assert.equal(e.schema, 'public');
        assert.equal(e.table, 'messages');
        const ts = Date.parse(e.commit_timestamp);
        assert.ok(Number.isFinite(ts), `commit_timestamp parses: ${e.commit_timestamp}`);
        assert.ok(ts >= before - 5000 && ts <= Date.now() + 5000, `commit_timestamp ${e.commit_timestamp} is now-ish`);
        assert.ok(e.errors === null || e.errors === undefined || (Array.isArray(e.errors) && e.errors.length === 0), `errors: ${JSON.stringify(e.errors)}`);
      }
      assert.deepEqual(ins.new, row, 'INSERT new = the row as REST returned it');
      assert.equal(typeof ins.new.done, 'boolean');
      assert.equal(ins.new.n, 7);
      assert.equal(ins.new.big, 1234567890123);
      assert.equal(ins.new.price, 12.5);
      assert.equal(ins.new.ratio, 0.125);
      assert.deepEqual(ins.new.meta, { tags: ['x'], deep: { k: 1 } });
      assert.deepEqual(ins.old, {});
      assert.deepEqual(upd.new, { ...row, body: 'second', done: false, n: 8 });
      assert.deepEqual(upd.old, { id: row.id }, 'UPDATE without REPLICA IDENTITY FULL: old has the primary key only');
      assert.deepEqual(del.new, {});
      assert.deepEqual(del.old, { id: row.id }, 'DELETE without REPLICA IDENTITY FULL: old has the primary key only');
      assert.ok(Date.parse(ins.commit_timestamp) <= Date.parse(upd.commit_timestamp));
      assert.ok(Date.parse(upd.commit_timestamp) <= Date.parse(del.commit_timestamp));
      await ev.expectNone(200, (e, i) => i >= 3, 'exactly three events');
    });

    it('sends whole old rows with REPLICA IDENTITY FULL (no RLS), and the key only without it', async () => {
      const c = await rt.client();
      const full = collector('items');
      const keyOnly = collector('plain');
      await subscribed(
        c.channel('pc-identity')
          .on('postgres_changes', pg('*', 'items', { filter: 'id=gte.100' }), full.push)
          .on('postgres_changes', pg('*', 'plain'), keyOnly.push),
      );
      ok(await svc.from('items').insert({ id: 100, owner: 'amy', n: 1, status: 'open', label: 'a' }), 'insert items');
      ok(await svc.from('items').update({ label: 'b', n: 2 }).eq('id', 100), 'update items');
      ok(await svc.from('items').delete().eq('id', 100), 'delete items');
      ok(await svc.from('plain').insert({ id: 100, label: 'a' }), 'insert plain');
      ok(await svc.from('plain').update({ label: 'b' }).eq('id', 100), 'update plain');
      ok(await svc.from('plain').delete().eq('id', 100), 'delete plain');
      const f = await full.waitForCount(3);
      assert.deepEqual(f.map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE']);
      assert.deepEqual(f[1].old, { id: 100, owner: 'amy', n: 1, status: 'open', label: 'a' });
      assert.deepEqual(f[1].new, { id: 100, owner: 'amy', n: 2, status: 'open', label: 'b' });
      assert.deepEqual(f[2].old, { id: 100, owner: 'amy', n: 2, status: 'open', label: 'b' });
      const k = await keyOnly.waitForCount(3);
      assert.deepEqual(k.map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE']);
      assert.deepEqual(k[1].new, { id: 100, label: 'b' });
      assert.deepEqual(k[1].old, { id: 100 });
      assert.deepEqual(k[2].old, { id: 100 });
    });

    it('with RLS and REPLICA IDENTITY FULL, policy-bound subscribers get only the key of old rows; service_role gets them whole', async () => {
      const a = await rt.client({ token: rt.userJwt(A) });
      const s = await rt.client({ key: srv.serviceKey });
      const evA = collector('secrets as A');
      const evS = collector('secrets as service');
      await subscribed(a.channel('pc-secrets-a').on('postgres_changes', pg('*', 'secrets'), evA.push));
      await subscribed(s.channel('pc-secrets-s').on('postgres_changes', pg('*', 'secrets'), evS.push));
      ok(await svc.from('secrets').insert({ id: 1, user_id: A, body: 'v1' }), 'insert');
      ok(await svc.from('secrets').update({ body: 'v2' }).eq('id', 1), 'update');
      ok(await svc.from('secrets').delete().eq('id', 1), 'delete');
      const sv = await evS.waitForCount(3);
      assert.deepEqual(sv[1].old, { id: 1, user_id: A, body: 'v1' });
      assert.deepEqual(sv[2].old, { id: 1, user_id: A, body: 'v2' });
      const av = await evA.waitForCount(3);
      assert.deepEqual(av.map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE']);
      assert.deepEqual(av[1].new, { id: 1, user_id: A, body: 'v2' });
      assert.deepEqual(av[1].old, { id: 1 }, 'RLS table: UPDATE old carries the key only');
      assert.deepEqual(av[2].old, { id: 1 }, 'RLS table: DELETE old carries the key only');
    });

    it('event bindings: INSERT-only, UPDATE-only, DELETE-only and * each get their kind', async () => {
      const c = await rt.client();
      const ins = collector('INSERT');
      const upd = collector('UPDATE');
      const del = collector('DELETE');
      const all = collector('*');
      await subscribed(
        c.channel('pc-events')
          .on('postgres_changes', pg('INSERT', 'items', { filter: 'id=eq.200' }), ins.push)
          .on('postgres_changes', pg('UPDATE', 'items', { filter: 'id=eq.200' }), upd.push)
          .on('postgres_changes', pg('DELETE', 'items', { filter: 'id=eq.200' }), del.push)
          .on('postgres_changes', pg('*', 'items', { filter: 'id=eq.200' }), all.push),
      );
      ok(await svc.from('items').insert({ id: 200, label: 'x' }), 'insert');
      ok(await svc.from('items').update({ label: 'y' }).eq('id', 200), 'update');
      ok(await svc.from('items').update({ label: 'z' }).eq('id', 200), 'update 2');
      ok(await svc.from('items').delete().eq('id', 200), 'delete');
      const everything = await all.waitForCount(4);
      assert.deepEqual(everything.map((e) => e.eventType), ['INSERT', 'UPDATE', 'UPDATE', 'DELETE']);
      await sleep(150);
      assert.deepEqual(ins.items.map((e) => e.eventType), ['INSERT']);
      assert.deepEqual(upd.items.map((e) => [e.eventType, e.new.label]), [['UPDATE', 'y'], ['UPDATE', 'z']]);
      assert.deepEqual(del.items.map((e) => e.eventType), ['DELETE']);
    });

    it('table bindings get their table only; schema-wide bindings get every published table, never unpublished ones', async () => {
      const c = await rt.client({ key: srv.serviceKey });
      const plainOnly = collector('plain');
      const schemaWide = collector('public *');
      const anySchema = collector('* *');
      await subscribed(
        c.channel('pc-scope')
          .on('postgres_changes', pg('*', 'plain'), plainOnly.push)
          .on('postgres_changes', { event: '*', schema: 'public' }, schemaWide.push)
          .on('postgres_changes', { event: 'INSERT', schema: '*' }, anySchema.push),
      );
      ok(await svc.from('hidden').insert({ id: 300, label: 'never published' }), 'hidden');
      ok(await svc.from('dropped').insert({ id: 300, label: 'unpublished by migration 003' }), 'dropped');
      ok(await svc.from('items').insert({ id: 300, label: 'items' }), 'items');
      ok(await svc.from('plain').insert({ id: 300, label: 'plain' }), 'plain');
      const wide = await schemaWide.waitFor((e) => e.table === 'plain' && e.new.id === 300);
      assert.ok(wide);
      await anySchema.waitFor((e) => e.table === 'plain' && e.new.id === 300);
      await plainOnly.waitFor((e) => e.new.id === 300);
      const tables = schemaWide.items.map((e) => e.table);
      assert.ok(tables.includes('items'), `schema-wide binding got items: ${tables}`);
      assert.ok(!tables.includes('hidden'), 'a table not in the publication sends nothing');
      assert.ok(!tables.includes('dropped'), 'a table dropped from the publication sends nothing');
      assert.ok(!anySchema.items.some((e) => e.table === 'hidden' || e.table === 'dropped'));
      assert.deepEqual(plainOnly.items.map((e) => e.table), ['plain']);
    });

    it('filters: eq, neq, lt, lte, gt, gte and in (numbers compare as numbers)', async () => {
      const c = await rt.client();
      const specs = {
        'id=eq.402': [402],
        'owner=neq.bob': [402, 403],
        'n=lt.5': [401],
        'n=lte.5': [401, 402],
        'n=gt.5': [403],
        'n=gte.5': [402, 403],
        'n=lt.10': [401, 402, 403],
        'status=in.(open,urgent)': [401, 403],
        'owner=eq.amy': [402, 403],
        'label=eq.v1.2 beta': [403],
        'owner=in.(bob,nobody)': [401],
      };
      const got = {};
      let ch = c.channel('pc-filters');
      for (const f of Object.keys(specs)) {
        got[f] = collector(f);
        ch = ch.on('postgres_changes', pg('INSERT', 'items', { filter: f }), got[f].push);
      }
      const all = collector('all');
      ch = ch.on('postgres_changes', pg('INSERT', 'items', { filter: 'id=gte.400' }), all.push);
      await subscribed(ch);
      ok(
        await svc.from('items').insert([
          { id: 401, owner: 'bob', n: 2, status: 'open' },
          { id: 402, owner: 'amy', n: 5, status: 'closed' },
          { id: 403, owner: 'amy', n: 9, status: 'urgent', label: 'v1.2 beta' },
          { id: 404, owner: null, n: null, status: null },
        ]),
        'insert',
      );
      await all.waitForCount(4);
      await sleep(150);
      for (const [f, ids] of Object.entries(specs)) {
        assert.deepEqual(got[f].items.map((e) => e.new.id), ids, `filter ${f}`);
      }
      // UPDATE events are matched against the new row.
      const gte = collector('n=gte.5 updates');
      const lt = collector('n=lt.5 updates');
      const c2 = await rt.client();
      await subscribed(
        c2.channel('pc-filter-update')
          .on('postgres_changes', pg('UPDATE', 'items', { filter: 'n=gte.5' }), gte.push)
          .on('postgres_changes', pg('UPDATE', 'items', { filter: 'n=lt.5' }), lt.push),
      );
      ok(await svc.from('items').update({ n: 6 }).eq('id', 401), 'update 401');
      const e = await gte.waitFor((x) => x.new.id === 401);
      assert.equal(e.new.n, 6);
      await lt.expectNone(200, () => true, 'no n=lt.5 update for a row now at n=6');
    });

    it('row-level security: each user sees only their rows, anon sees none, service_role sees all', async () => {
      const tokA = rt.userJwt(A);
      const tokB = rt.userJwt(B);
      const subs = {
        a: await rt.client({ token: tokA }),
        b: await rt.client({ token: tokB }),
        c: await rt.client({ token: rt.userJwt(C) }),
        anon: await rt.client(),
        service: await rt.client({ key: srv.serviceKey }),
      };
      const ev = {};
      for (const [who, client] of Object.entries(subs)) {
        ev[who] = collector(who);
        await subscribed(client.channel(`pc-rls-${who}`).on('postgres_changes', pg('*', 'messages', { filter: 'room=eq.rls' }), ev[who].push));
      }
      const ids = {};
      ids.a1 = ok(await svc.from('messages').insert({ user_id: A, room: 'rls', body: 'a1' }).select('id').single(), 'a1').id;
      ids.b1 = ok(await svc.from('messages').insert({ user_id: B, room: 'rls', body: 'b1' }).select('id').single(), 'b1').id;
      // A user writing their own row through REST under the insert policy.
      ids.a2 = ok(await subs.a.from('messages').insert({ user_id: A, room: 'rls', body: 'a2' }).select('id').single(), 'a2 by A').id;
      ids.none = ok(await svc.from('messages').insert({ user_id: null, room: 'rls', body: 'nobody' }).select('id').single(), 'none').id;
      // Moving a row from A to B: A no longer may see the new row, B may.
      ok(await svc.from('messages').update({ user_id: B, body: 'moved' }).eq('id', ids.a1), 'move');
      const s = await ev.service.waitForCount(5);
      assert.deepEqual(s.map((e) => [e.eventType, e.new.body]), [['INSERT', 'a1'], ['INSERT', 'b1'], ['INSERT', 'a2'], ['INSERT', 'nobody'], ['UPDATE', 'moved']]);
      const b = await ev.b.waitForCount(2);
      assert.deepEqual(b.map((e) => [e.eventType, e.new.body]), [['INSERT', 'b1'], ['UPDATE', 'moved']]);
      const a = await ev.a.waitForCount(2);
      assert.deepEqual(a.map((e) => [e.eventType, e.new.body]), [['INSERT', 'a1'], ['INSERT', 'a2']]);
      await sleep(300);
      assert.equal(ev.a.length, 2, `A must not see B's rows or the moved row: ${JSON.stringify(ev.a.items.map((e) => e.new))}`);
      assert.equal(ev.b.length, 2, `B must not see A's rows: ${JSON.stringify(ev.b.items.map((e) => e.new))}`);
      assert.equal(ev.c.length, 0, `C owns nothing: ${JSON.stringify(ev.c.items)}`);
      assert.equal(ev.anon.length, 0, `anon has no policy: ${JSON.stringify(ev.anon.items)}`);
      // Deletes carry the primary key only.
      ok(await svc.from('messages').delete().eq('id', ids.a2), 'delete a2');
      const d = await ev.a.waitFor((e) => e.eventType === 'DELETE');
      assert.deepEqual(d.old, { id: ids.a2 });
      assert.deepEqual(d.new, {});
    });

    it('row-level security with a membership subquery and a boolean policy, evaluated at change time', async () => {
      ok(await svc.from('members').insert([{ team_id: 1, user_id: A }, { team_id: 2, user_id: B }]), 'members');
      const ev = { a: collector('A'), b: collector('B'), anon: collector('anon') };
      const subs = { a: await rt.client({ token: rt.userJwt(A) }), b: await rt.client({ token: rt.userJwt(B) }), anon: await rt.client() };
      for (const who of Object.keys(ev)) {
        await subscribed(subs[who].channel(`pc-team-${who}`).on('postgres_changes', pg('INSERT', 'team_posts'), ev[who].push));
      }
      const memberDeletes = collector('members deletes');
      await subscribed((await rt.client({ key: srv.serviceKey })).channel('pc-members').on('postgres_changes', pg('DELETE', 'members'), memberDeletes.push));
      ok(
        await svc.from('team_posts').insert([
          { id: 1, team_id: 1, body: 'team 1 draft', published: false },
          { id: 2, team_id: 2, body: 'team 2 published', published: true },
          { id: 3, team_id: 1, body: 'team 1 published', published: true },
        ]),
        'posts',
      );
      const seen = async (who, n) => (await ev[who].waitForCount(n)).map((e) => e.new.id);
      assert.deepEqual(await seen('a', 2), [1, 3], 'A is in team 1');
      assert.deepEqual(await seen('b', 1), [2], 'B is in team 2');
      assert.deepEqual(await seen('anon', 2), [2, 3], 'anon reads published posts');
      // A leaves team 1: later posts of team 1 are no longer A's.
      ok(await svc.from('members').delete().eq('team_id', 1).eq('user_id', A), 'A leaves');
      const del = await memberDeletes.waitFor();
      assert.deepEqual(del.old, { team_id: 1, user_id: A }, 'a composite primary key is the old record');
      ok(await svc.from('team_posts').insert({ id: 4, team_id: 1, body: 'after A left' }), 'post 4');
      ok(await svc.from('team_posts').insert({ id: 5, team_id: 2, body: 'marker', published: true }), 'post 5');
      await ev.b.waitFor((e) => e.new.id === 5);
      await ev.anon.waitFor((e) => e.new.id === 5);
      await sleep(200);
      assert.deepEqual(ev.a.items.map((e) => e.new.id), [1, 3], 'membership is checked when the change happens');
      assert.deepEqual(ev.b.items.map((e) => e.new.id), [2, 5]);
    });

    it('never delivers rolled-back writes (Prefer: tx=rollback, a failing batch, a policy violation)', async () => {
      const c = await rt.client({ key: srv.serviceKey });
      const ev = collector('items 5xx');
      const evMsg = collector('messages rollback');
      await subscribed(
        c.channel('pc-rollback')
          .on('postgres_changes', pg('*', 'items', { filter: 'id=gte.500' }), ev.push)
          .on('postgres_changes', pg('*', 'messages', { filter: 'room=eq.rollback' }), evMsg.push),
      );
      ok(await svc.from('items').insert({ id: 500, label: 'base' }), 'base');
      await ev.waitFor((e) => e.new.id === 500);
      const rolled = await rest(srv, '/items', { method: 'POST', headers: { Prefer: 'tx=rollback,return=representation' }, body: { id: 501, label: 'rolled back' } });
      assert.equal(rolled.status, 201, rolled.text);
      const rolledUpd = await rest(srv, '/items?id=eq.500', { method: 'PATCH', headers: { Prefer: 'tx=rollback' }, body: { label: 'rolled back update' } });
      assert.ok(rolledUpd.status >= 200 && rolledUpd.status < 300, rolledUpd.text);
      const rolledDel = await rest(srv, '/items?id=eq.500', { method: 'DELETE', headers: { Prefer: 'tx=rollback' } });
      assert.ok(rolledDel.status >= 200 && rolledDel.status < 300, rolledDel.text);
      // The second row of the batch collides with id 500: the whole batch fails.
      const batch = await svc.from('items').insert([{ id: 502, label: 'batch 1' }, { id: 500, label: 'dup' }, { id: 503, label: 'batch 3' }]);
      assert.ok(batch.error, 'the batch must fail');
      // A user insert refused by WITH CHECK.
      const a = await rt.client({ token: rt.userJwt(A) });
      const refused = await a.from('messages').insert({ user_id: B, room: 'rollback', body: 'not mine' });
      assert.ok(refused.error, 'WITH CHECK must refuse the insert');
      ok(await svc.from('items').insert({ id: 509, label: 'marker' }), 'marker');
      ok(await svc.from('messages').insert({ user_id: A, room: 'rollback', body: 'marker' }), 'marker message');
      await ev.waitFor((e) => e.new.id === 509);
      await evMsg.waitFor((e) => e.new.body === 'marker');
      await sleep(100);
      assert.deepEqual(ev.items.map((e) => [e.eventType, e.new.id]), [['INSERT', 500], ['INSERT', 509]], 'only committed writes');
      assert.deepEqual(evMsg.items.map((e) => e.new.body), ['marker']);
      const check = ok(await svc.from('items').select('id,label').gte('id', 500).order('id'), 'read back');
      assert.deepEqual(check, [{ id: 500, label: 'base' }, { id: 509, label: 'marker' }]);
    });

    it('50 concurrent inserts from several clients arrive once each, in commit order', async () => {
      const watcher = await rt.client({ key: srv.serviceKey });
      const userWatcher = await rt.client({ token: rt.userJwt(D) });
      const ev = collector('seq as service');
      const evD = collector('seq as D');
      await subscribed(watcher.channel('pc-order').on('postgres_changes', pg('INSERT', 'seq'), ev.push));
      await subscribed(userWatcher.channel('pc-order-d').on('postgres_changes', pg('INSERT', 'seq'), evD.push));
      const writers = [
        ['service', svc],
        ['A', await rt.client({ token: rt.userJwt(A) })],
        ['B', await rt.client({ token: rt.userJwt(B) })],
        ['C', await rt.client({ token: rt.userJwt(C) })],
        ['service2', srv.client('service')],
      ];
      const writes = [];
      for (let k = 0; k < 10; k++) {
        for (const [name, client] of writers) {
          writes.push(client.from('seq').insert({ writer: name, k }).select('id').single());
        }
      }
      const results = await Promise.all(writes);
      results.forEach((r, i) => assert.equal(r.error, null, `write ${i}: ${JSON.stringify(r.error)}`));
      const written = results.map((r) => r.data.id);
      const got = (await ev.waitForCount(50, 10_000)).map((e) => e.new.id);
      const gotD = (await evD.waitForCount(50, 10_000)).map((e) => e.new.id);
      await sleep(200);
      assert.equal(ev.length, 50, 'each insert exactly once');
      assert.equal(new Set(got).size, 50, 'no duplicates');
      for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `ids increase in delivery order: ${got}`);
      const rows = ok(await svc.from('seq').select('id').order('id'), 'read back').map((r) => r.id);
      assert.deepEqual(got, rows, 'the delivered sequence is the committed sequence');
      assert.deepEqual([...written].sort((x, y) => x - y), rows);
      assert.deepEqual(gotD, got, 'a policy-bound subscriber sees the same order');
      const stamps = ev.items.map((e) => Date.parse(e.commit_timestamp));
      for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] >= stamps[i - 1], 'commit timestamps do not go back');
    });

    it('upserts, bulk updates, RPC writes and cascaded deletes are delivered as Postgres would log them', async () => {
      const c = await rt.client({ key: srv.serviceKey });
      const ev = collector('plain 8xx');
      const kids = collector('children');
      const parents = collector('parents');
      await subscribed(
        c.channel('pc-writes')
          .on('postgres_changes', pg('*', 'plain', { filter: 'id=gte.800' }), ev.push)
          .on('postgres_changes', pg('*', 'children'), kids.push)
          .on('postgres_changes', pg('DELETE', 'parents'), parents.push),
      );
      ok(await svc.from('plain').insert({ id: 800, label: 'a' }), 'insert 800');
      ok(await svc.from('plain').upsert({ id: 800, label: 'upserted' }, { onConflict: 'id' }), 'upsert existing');
      ok(await svc.from('plain').upsert({ id: 801, label: 'new via upsert' }, { onConflict: 'id' }), 'upsert new');
      ok(await svc.from('plain').upsert({ id: 800, label: 'ignored' }, { onConflict: 'id', ignoreDuplicates: true }), 'upsert ignored');
      ok(await svc.from('plain').update({ label: 'bulk' }).in('id', [800, 801]), 'bulk update');
      ok(await svc.rpc('add_plain', { pid: 802, plabel: 'rpc' }), 'rpc insert');
      const dup = await svc.rpc('add_plain', { pid: 802, plabel: 'rpc dup' });
      assert.ok(dup.error, 'a failing RPC write');
      ok(await svc.from('plain').insert({ id: 809, label: 'marker' }), 'marker');
      await ev.waitFor((e) => e.new.id === 809);
      await sleep(100);
      assert.deepEqual(
        ev.items.map((e) => [e.eventType, e.new.id ?? e.old.id, e.new.label]),
        [
          ['INSERT', 800, 'a'],
          ['UPDATE', 800, 'upserted'],
          ['INSERT', 801, 'new via upsert'],
          ['UPDATE', 800, 'bulk'],
          ['UPDATE', 801, 'bulk'],
          ['INSERT', 802, 'rpc'],
          ['INSERT', 809, 'marker'],
        ],
        'an upsert of an existing row is one UPDATE; ignoreDuplicates is no change; failed RPCs send nothing',
      );
      ok(await svc.from('parents').insert({ id: 1, name: 'p' }), 'parent');
      ok(await svc.from('children').insert([{ id: 1, parent_id: 1, label: 'c1' }, { id: 2, parent_id: 1, label: 'c2' }]), 'children');
      await kids.waitForCount(2);
      ok(await svc.from('parents').delete().eq('id', 1), 'delete parent');
      await parents.waitFor((e) => e.old.id === 1);
      const gone = await until(() => (kids.items.filter((e) => e.eventType === 'DELETE').length >= 2 ? kids.items.filter((e) => e.eventType === 'DELETE') : null), 'cascaded child deletes', 3000);
      assert.deepEqual(gone.map((e) => e.old.id).sort(), [1, 2], 'ON DELETE CASCADE rows are deleted rows too');
    });

    it('a 300-row batch insert arrives complete and in order', async () => {
      const c = await rt.client({ key: srv.serviceKey });
      const ev = collector('batch');
      await subscribed(c.channel('pc-batch').on('postgres_changes', pg('INSERT', 'items', { filter: 'id=gte.10000' }), ev.push));
      const rows = Array.from({ length: 300 }, (_, i) => ({ id: 10000 + i, label: `row ${i}` }));
      ok(await svc.from('items').insert(rows), 'batch');
      const got = await ev.waitForCount(300, 10_000);
      assert.deepEqual(got.map((e) => e.new.id), rows.map((r) => r.id));
      assert.equal(new Set(got.map((e) => e.commit_timestamp)).size, 1, 'one transaction, one commit_timestamp');
    });

    it('a raw socket rejoining a topic (new join_ref) gets each change once, tagged with the new join', async () => {
      const s = await rt.raw({ apikey: srv.serviceKey });
      const binding = { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'plain', filter: 'id=eq.900' }] } };
      const first = await s.join('realtime:pc-rejoin-raw', '1', binding);
      assert.equal(first[4].status, 'ok');
      const second = await s.join('realtime:pc-rejoin-raw', '5', binding);
      assert.equal(second[4].status, 'ok');
      const newId = second[4].response.postgres_changes[0].id;
      ok(await svc.from('plain').insert({ id: 900, label: 'once' }), 'insert');
      const f = await s.next((m) => m[3] === 'postgres_changes');
      await sleep(300);
      assert.equal(s.inbox.filter((m) => m[3] === 'postgres_changes').length, 1, 'delivered once, not once per join');
      assert.ok(f[0] === '5' || f[0] === null, `join_ref of the current join (or null), got ${JSON.stringify(f[0])}`);
      assert.deepEqual(f[4].ids, [newId]);
      s.close();
    });

    it('a supabase-js client on vsn 1.0.0 receives changes and broadcasts too', async () => {
      const c = await rt.client({ key: srv.serviceKey, realtime: { vsn: '1.0.0' } });
      const ev = collector('v1 changes');
      const bc = collector('v1 broadcast');
      const ch = c.channel('pc-v1', { config: { broadcast: { self: true, ack: true } } })
        .on('postgres_changes', pg('INSERT', 'plain', { filter: 'id=eq.600' }), ev.push)
        .on('broadcast', { event: 'hello' }, bc.push);
      await subscribed(ch);
      ok(await svc.from('plain').insert({ id: 600, label: 'v1' }), 'insert');
      const e = await ev.waitFor();
      assert.deepEqual(e.new, { id: 600, label: 'v1' });
      assert.equal(await ch.send({ type: 'broadcast', event: 'hello', payload: { over: 'v1' } }), 'ok');
      const m = await bc.waitFor();
      assert.deepEqual(m.payload, { over: 'v1' });
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('channel lifecycle', () => {
    it('unsubscribe leaves one channel while another on the same socket keeps receiving', async () => {
      const c = await rt.client();
      const one = collector('one');
      const two = collector('two');
      const ch1 = c.channel('life-1').on('postgres_changes', pg('INSERT', 'plain', { filter: 'id=gte.700' }), one.push);
      const ch2 = c.channel('life-2').on('postgres_changes', pg('INSERT', 'plain', { filter: 'id=gte.700' }), two.push);
      await subscribed(ch1);
      await subscribed(ch2);
      ok(await svc.from('plain').insert({ id: 700, label: 'both' }), 'insert 700');
      await one.waitFor((e) => e.new.id === 700);
      await two.waitFor((e) => e.new.id === 700);
      assert.equal(await ch1.unsubscribe(), 'ok');
      assert.notEqual(ch1.state, 'joined');
      ok(await svc.from('plain').insert({ id: 701, label: 'two only' }), 'insert 701');
      await two.waitFor((e) => e.new.id === 701);
      await sleep(150);
      assert.deepEqual(one.items.map((e) => e.new.id), [700], 'a left channel gets nothing more');
      // Joining the same topic again works.
      const again = collector('again');
      await subscribed(c.channel('life-1').on('postgres_changes', pg('INSERT', 'plain', { filter: 'id=gte.700' }), again.push));
      ok(await svc.from('plain').insert({ id: 702, label: 'rejoined' }), 'insert 702');
      await again.waitFor((e) => e.new.id === 702);
    });

    it('stays connected while heartbeats are answered (250 ms heartbeat interval)', async () => {
      const beats = [];
      const c = await rt.client({ realtime: { heartbeatIntervalMs: 250 } });
      c.realtime.onHeartbeat((status) => beats.push(status));
      const ch = c.channel('life-heartbeat');
      await subscribed(ch);
      const conn = c.realtime.socketAdapter.getSocket().conn;
      await sleep(2200);
      const okBeats = beats.filter((s) => s === 'ok').length;
      assert.ok(okBeats >= 5, `heartbeats answered: ${beats.join(',')}`);
      assert.ok(!beats.includes('timeout') && !beats.includes('error'), `no heartbeat timeouts: ${beats.join(',')}`);
      assert.equal(c.realtime.socketAdapter.getSocket().conn, conn, 'the socket was never replaced');
      assert.equal(ch.state, 'joined');
    });

    it('reconnects and rejoins after the socket drops, then delivers later changes', async () => {
      const c = await rt.client({ token: rt.userJwt(A) });
      const ev = collector('after reconnect');
      const ch = c.channel('life-rejoin').on('postgres_changes', pg('INSERT', 'messages', { filter: 'room=eq.rejoin' }), ev.push);
      await subscribed(ch);
      const conn = c.realtime.socketAdapter.getSocket().conn;
      killSocket(c);
      await until(() => ch.state !== 'joined', 'the channel to notice the drop', 3000);
      await until(() => ch.state === 'joined' && c.realtime.socketAdapter.getSocket().conn !== conn, 'the client to reconnect and rejoin', 10_000);
      await sleep(100);
      ok(await svc.from('messages').insert({ user_id: A, room: 'rejoin', body: 'after' }), 'insert');
      const e = await ev.waitFor((x) => x.new.body === 'after');
      assert.equal(e.eventType, 'INSERT');
      // The rejoin still carries A's token: B's rows stay invisible.
      ok(await svc.from('messages').insert({ user_id: B, room: 'rejoin', body: 'for B' }), 'insert B');
      ok(await svc.from('messages').insert({ user_id: A, room: 'rejoin', body: 'marker' }), 'marker');
      await ev.waitFor((x) => x.new.body === 'marker');
      assert.ok(!ev.items.some((x) => x.new.body === 'for B'), 'the rejoined channel kept its user token');
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('tokens', () => {
    it('setAuth pushes a new access_token: the channel then sees what the new user may see', async () => {
      let tok = rt.userJwt(A);
      const c = await rt.client({ token: () => tok });
      const ev = collector('switching user');
      const ch = c.channel('tok-switch').on('postgres_changes', pg('INSERT', 'messages', { filter: 'room=eq.switch' }), ev.push);
      await subscribed(ch);
      ok(await svc.from('messages').insert({ user_id: B, room: 'switch', body: 'B before' }), 'B before');
      ok(await svc.from('messages').insert({ user_id: A, room: 'switch', body: 'A before' }), 'A before');
      await ev.waitFor((e) => e.new.body === 'A before');
      tok = rt.userJwt(B);
      await c.realtime.setAuth(tok);
      await sleep(200); // the access_token push is fire-and-forget
      ok(await svc.from('messages').insert({ user_id: A, room: 'switch', body: 'A after' }), 'A after');
      ok(await svc.from('messages').insert({ user_id: B, room: 'switch', body: 'B after' }), 'B after');
      await ev.waitFor((e) => e.new.body === 'B after');
      await sleep(100);
      assert.deepEqual(ev.items.map((e) => e.new.body), ['A before', 'B after']);
      assert.equal(ch.state, 'joined');
    });

    it('closes a channel when its token expires; a refreshed token keeps another channel open', async () => {
      const exp = nowSec() + 3;
      const started = Date.now();
      let refreshTok = rt.userJwt(A, { exp });
      const expiring = await rt.client({ token: rt.userJwt(A, { exp }) });
      const refreshed = await rt.client({ token: () => refreshTok });
      const evX = collector('expiring');
      const evR = collector('refreshed');
      const sys = collector('system');
      const statuses = [];
      const chX = expiring
        .channel('tok-expiring')
        .on('postgres_changes', pg('INSERT', 'messages', { filter: 'room=eq.expiry' }), evX.push)
        .on('system', {}, sys.push);
      await new Promise((resolve, reject) => {
        chX.subscribe((status, err) => {
          statuses.push(status);
          if (status === 'SUBSCRIBED') resolve();
          else if (statuses.length === 1) reject(err ?? new Error(status));
        });
      });
      const chR = refreshed.channel('tok-refreshed').on('postgres_changes', pg('INSERT', 'messages', { filter: 'room=eq.expiry' }), evR.push);
      await subscribed(chR);
      ok(await svc.from('messages').insert({ user_id: A, room: 'expiry', body: 'while valid' }), 'insert');
      await evX.waitFor((e) => e.new.body === 'while valid');
      await evR.waitFor((e) => e.new.body === 'while valid');
      refreshTok = rt.userJwt(A, { exp: nowSec() + 3600 });
      await refreshed.realtime.setAuth(refreshTok);
      await until(() => chX.state !== 'joined', 'the expiring channel to leave state joined', 7000 - (Date.now() - started));
      assert.ok(Date.now() - started >= 1500, 'the channel must not close long before its token expires');
      const told = sys.items.some((m) => m.status === 'error') || statuses.some((s) => s === 'CLOSED' || s === 'CHANNEL_ERROR');
      assert.ok(told, `the client is told: system ${JSON.stringify(sys.items)}, statuses ${statuses}`);
      ok(await svc.from('messages').insert({ user_id: A, room: 'expiry', body: 'after expiry' }), 'insert after');
      await evR.waitFor((e) => e.new.body === 'after expiry');
      await sleep(300);
      assert.ok(!evX.items.some((e) => e.new.body === 'after expiry'), 'an expired channel receives no changes');
      assert.notEqual(chX.state, 'joined', 'and is not silently rejoined');
      assert.equal(chR.state, 'joined', 'the refreshed channel stays joined past the first expiry');
    });

    it('refuses a join whose token has already expired, and closes a channel given an invalid token', async () => {
      const c = await rt.client({ token: rt.userJwt(A, { exp: nowSec() - 5 }) });
      await assertJoinRefused(c.channel('tok-expired-join'), 'expired token');
      let tok = rt.userJwt(A);
      const d = await rt.client({ token: () => tok });
      const ev = collector('invalid token');
      const ch = d.channel('tok-invalid').on('postgres_changes', pg('INSERT', 'messages', { filter: 'room=eq.invalid' }), ev.push);
      await subscribed(ch);
      tok = `${rt.userJwt(A).slice(0, -4)}AAAA`;
      await d.realtime.setAuth(tok);
      await until(() => ch.state !== 'joined', 'the channel with a bad token to close', 3000);
      ok(await svc.from('messages').insert({ user_id: A, room: 'invalid', body: 'x' }), 'insert');
      await ev.expectNone(400, () => true, 'nothing for a channel whose token was refused');
    });

    it('a private channel whose new access_token may not read the topic is closed', async () => {
      let tok = rt.userJwt(A);
      const c = await rt.client({ token: () => tok });
      const ev = collector('user:A private');
      const ch = c.channel(`user:${A}`, { config: { private: true } }).on('broadcast', { event: 'm' }, ev.push);
      await subscribed(ch);
      const send = async (n) => {
        const res = await fetch(`${srv.url}/realtime/v1/api/broadcast`, {
          method: 'POST',
          headers: { apikey: srv.serviceKey, Authorization: `Bearer ${srv.serviceKey}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ messages: [{ topic: `user:${A}`, event: 'm', payload: { n }, private: true }] }),
        });
        assert.equal(res.status, 202, await res.text());
      };
      await send(1);
      await ev.waitFor((m) => m.payload.n === 1);
      tok = rt.userJwt(B); // B's policy covers user:B only
      await c.realtime.setAuth(tok);
      await sleep(300);
      await send(2);
      await sleep(300);
      assert.deepEqual(ev.items.map((m) => m.payload.n), [1], "B's token must not read A's private topic");
      assert.notEqual(ch.state, 'joined', 'the server closes a private channel the new token may not read');
    });

    it('a signed-in supabase-js user (auth session token) gets their rows; after signOut the channel gets none', async () => {
      const c = await rt.client();
      const email = `rt-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
      const { data, error } = await c.auth.signUp({ email, password: 'Corr3ctHorse' });
      assert.equal(error, null, JSON.stringify(error));
      assert.ok(data.session, 'signUp returns a session (no SMTP configured)');
      const uid = data.user.id;
      await until(() => c.realtime.accessTokenValue === data.session.access_token, 'supabase-js to hand the session token to realtime');
      const ev = collector('signed-in user');
      const ch = c.channel('tok-session').on('postgres_changes', pg('INSERT', 'messages', { filter: 'room=eq.session' }), ev.push);
      await subscribed(ch);
      ok(await c.from('messages').insert({ user_id: uid, room: 'session', body: 'mine' }), 'insert own row as the user');
      ok(await svc.from('messages').insert({ user_id: A, room: 'session', body: 'not mine' }), 'insert for A');
      ok(await svc.from('messages').insert({ user_id: uid, room: 'session', body: 'mine 2' }), 'insert own row 2');
      await ev.waitFor((e) => e.new.body === 'mine 2');
      assert.deepEqual(ev.items.map((e) => e.new.body), ['mine', 'mine 2']);
      assert.equal((await c.auth.signOut()).error, null);
      await until(() => c.realtime.accessTokenValue === srv.anonKey, 'realtime to fall back to the API key after signOut');
      await sleep(300);
      ok(await svc.from('messages').insert({ user_id: uid, room: 'session', body: 'after sign-out' }), 'insert after');
      await ev.expectNone(500, (e) => e.new.body === 'after sign-out', 'no rows for a signed-out channel');
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('broadcast', () => {
    it('delivers between clients; self false/true; ack resolves ok; event names filter', async () => {
      const a = await rt.client();
      const b = await rt.client();
      const s = await rt.client();
      const evA = collector('a (self false, ack)');
      const evB = collector('b');
      const evBOther = collector('b other');
      const evS = collector('s (self true)');
      const chA = a.channel('bc-room', { config: { broadcast: { ack: true } } }).on('broadcast', { event: 'msg' }, evA.push);
      const chB = b.channel('bc-room').on('broadcast', { event: 'msg' }, evB.push).on('broadcast', { event: 'other' }, evBOther.push);
      const chS = s.channel('bc-room', { config: { broadcast: { self: true } } }).on('broadcast', { event: 'msg' }, evS.push);
      const elsewhere = collector('other room');
      const chX = (await rt.client()).channel('bc-elsewhere').on('broadcast', { event: 'msg' }, elsewhere.push);
      await Promise.all([subscribed(chA), subscribed(chB), subscribed(chS), subscribed(chX)]);
      assert.equal(await chA.send({ type: 'broadcast', event: 'msg', payload: { from: 'a', n: 1 } }), 'ok', 'ack: true resolves ok');
      const got = await evB.waitFor();
      assert.equal(got.type, 'broadcast');
      assert.equal(got.event, 'msg');
      assert.deepEqual(got.payload, { from: 'a', n: 1 });
      await evS.waitFor((m) => m.payload.from === 'a');
      assert.equal(await chS.send({ type: 'broadcast', event: 'msg', payload: { from: 's' } }), 'ok');
      await evS.waitFor((m) => m.payload.from === 's', undefined, 'self: true echoes to the sender');
      await evA.waitFor((m) => m.payload.from === 's');
      await chB.send({ type: 'broadcast', event: 'other', payload: { from: 'b' } });
      await evA.expectNone(300, (m) => m.payload.from === 'a', 'self: false: the sender does not get its own message');
      assert.deepEqual(evBOther.items, [], 'b does not hear its own "other" event (self false)');
      assert.deepEqual(evB.items.map((m) => m.payload.from), ['a', 's'], 'b heard a and s');
      assert.ok(!evB.items.some((m) => m.event === 'other'), 'a listener for "msg" gets no "other" events');
      assert.deepEqual(elsewhere.items, [], 'another topic hears nothing');
    });

    it('REST POST /realtime/v1/api/broadcast → 202 and delivery; send() before joining falls back to it', async () => {
      const r = await rt.client();
      const ev = collector('rest target');
      const ev2 = collector('rest target 2');
      await subscribed(r.channel('bc-rest').on('broadcast', { event: 'news' }, ev.push));
      await subscribed(r.channel('bc-rest-2').on('broadcast', { event: 'news' }, ev2.push));
      const res = await fetch(`${srv.url}/realtime/v1/api/broadcast`, {
        method: 'POST',
        headers: { apikey: srv.anonKey, Authorization: `Bearer ${srv.anonKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          messages: [
            { topic: 'bc-rest', event: 'news', payload: { via: 'rest', n: 1 } },
            { topic: 'bc-rest-2', event: 'news', payload: { via: 'rest', n: 2 } },
          ],
        }),
      });
      assert.equal(res.status, 202, await res.text());
      assert.deepEqual((await ev.waitFor()).payload, { via: 'rest', n: 1 });
      assert.deepEqual((await ev2.waitFor()).payload, { via: 'rest', n: 2 });
      const noAuth = await fetch(`${srv.url}/realtime/v1/api/broadcast`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: 'bc-rest', event: 'news', payload: { via: 'nobody' } }] }),
      });
      assert.equal(noAuth.status, 401, 'no apikey, no broadcast');
      await noAuth.text();
      // send() on a channel that never joined goes over REST.
      const sender = await rt.client();
      const unjoined = sender.channel('bc-rest');
      const warn = console.warn;
      console.warn = () => {};
      try {
        assert.equal(await unjoined.send({ type: 'broadcast', event: 'news', payload: { via: 'fallback' } }), 'ok');
      } finally {
        console.warn = warn;
      }
      assert.deepEqual((await ev.waitFor((m) => m.payload.via === 'fallback')).payload, { via: 'fallback' });
      await ev.expectNone(200, (m) => m.payload.via === 'nobody', 'nothing from the refused request');
    });

    it('round-trips binary (ArrayBuffer) payloads and UTF-8 topic and event names', { todo: 'raw (non-JSON) binary broadcast payloads are not passed through yet' }, async () => {
      const a = await rt.client();
      const b = await rt.client();
      const ev = collector('b');
      const topic = 'bc-ünïcødé-🚀';
      const chA = a.channel(topic, { config: { broadcast: { ack: true } } });
      await subscribed(chA);
      await subscribed(b.channel(topic).on('broadcast', { event: '*' }, ev.push));
      assert.equal(await chA.send({ type: 'broadcast', event: 'größe', payload: { text: 'naïve ☕', n: 1 } }), 'ok');
      const m = await ev.waitFor((x) => x.event === 'größe');
      assert.deepEqual(m.payload, { text: 'naïve ☕', n: 1 });
      const bytes = new Uint8Array([0, 255, 1, 128, 10, 200, 7]);
      assert.equal(await chA.send({ type: 'broadcast', event: 'bin', payload: bytes.buffer }), 'ok');
      const bin = await ev.waitFor((x) => x.event === 'bin');
      assert.ok(bin.payload instanceof ArrayBuffer, `a raw payload comes back raw (encoding 0), got ${JSON.stringify(bin.payload)}`);
      assert.deepEqual([...new Uint8Array(bin.payload)], [...bytes]);
    });

    it('channel.httpSend() (POST /api/broadcast/{topic}/events/{event}, beyond reference §5)', { todo: 'realtime-js httpSend endpoint is not in the reference contract' }, async () => {
      const r = await rt.client();
      const ev = collector('httpSend target');
      await subscribed(r.channel('bc-http').on('broadcast', { event: 'ping' }, ev.push));
      const sender = await rt.client();
      const res = await sender.channel('bc-http').httpSend('ping', { via: 'httpSend' });
      assert.deepEqual(res, { success: true });
      assert.deepEqual((await ev.waitFor()).payload, { via: 'httpSend' });
    });

    it('refuses a message over 1 MiB without delivering it; a 600 KiB one goes through', async () => {
      const big = await rt.raw();
      const recv = await rt.raw();
      await big.join('realtime:bc-size', '1', { config: { broadcast: { self: false } } });
      await recv.join('realtime:bc-size', '1', { config: { broadcast: { self: false } } });
      const fine = 'f'.repeat(600 * 1024);
      big.send(['1', '2', 'realtime:bc-size', 'broadcast', { type: 'broadcast', event: 'fine', payload: { fine } }]);
      assert.equal((await big.reply('2'))[4].status, 'ok');
      const delivered = await recv.next((m) => m.binary || m[3] === 'broadcast', 5000, 'the 600 KiB broadcast');
      const payload = delivered.binary ? delivered.payload : delivered[4].payload;
      assert.equal(payload.fine.length, fine.length);
      const huge = 'h'.repeat(1024 * 1024 + 4096);
      big.send(['1', '3', 'realtime:bc-size', 'broadcast', { type: 'broadcast', event: 'huge', payload: { huge } }]);
      const outcome = await Promise.race([
        big.closedP.then((c) => ({ closed: c })),
        big.reply('3', 5000).then((r) => ({ reply: r }), () => new Promise(() => {})),
      ]);
      if (outcome.reply) assert.equal(outcome.reply[4].status, 'error', `an oversized message is refused: ${JSON.stringify(outcome.reply).slice(0, 200)}`);
      else assert.ok([1009, 1008, 1011].includes(outcome.closed.code) || outcome.closed.code >= 1000, `closed: ${JSON.stringify(outcome.closed)}`);
      await sleep(300);
      assert.ok(
        !recv.inbox.some((m) => (m.binary ? m.event === 'huge' : m[3] === 'broadcast' && m[4]?.event === 'huge')),
        'the oversized message reached nobody',
      );
      // The server is fine afterwards.
      const again = await rt.raw();
      assert.equal((await again.join('realtime:bc-size', '5'))[4].status, 'ok');
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('presence', () => {
    it('track → join + state (also for late joiners), untrack → leave, re-track replaces meta', async () => {
      const w = await rt.client();
      const joins = collector('joins');
      const leaves = collector('leaves');
      const watcher = w
        .channel('pr-lobby', { config: { presence: { key: 'watcher' } } })
        .on('presence', { event: 'join' }, joins.push)
        .on('presence', { event: 'leave' }, leaves.push);
      await subscribed(watcher);
      const ada = await rt.client();
      const chAda = ada.channel('pr-lobby', { config: { presence: { key: 'ada' } } });
      await subscribed(chAda);
      assert.equal(await chAda.track({ name: 'Ada', online_at: 1 }), 'ok');
      const j = await joins.waitFor((e) => e.key === 'ada');
      assert.equal(j.newPresences.length, 1);
      assert.equal(j.newPresences[0].name, 'Ada');
      assert.ok(j.newPresences[0].presence_ref, 'metas carry a phx_ref (presence_ref)');
      await until(() => watcher.presenceState().ada?.[0]?.name === 'Ada', 'ada in the watcher state');
      // A client joining later gets the current state on join.
      const late = await rt.client();
      const synced = collector('late sync');
      const chLate = late.channel('pr-lobby', { config: { presence: { key: 'late' } } }).on('presence', { event: 'sync' }, synced.push);
      await subscribed(chLate);
      await until(() => chLate.presenceState().ada?.[0]?.name === 'Ada', `the late joiner sees ada: ${JSON.stringify(chLate.presenceState())}`);
      // Tracking again replaces the meta.
      assert.equal(await chAda.track({ name: 'Ada', online_at: 2 }), 'ok');
      await until(() => watcher.presenceState().ada?.length === 1 && watcher.presenceState().ada[0].online_at === 2, `re-track replaces: ${JSON.stringify(watcher.presenceState())}`);
      assert.equal(await chAda.untrack(), 'ok');
      const l = await leaves.waitFor((e) => e.key === 'ada');
      assert.equal(l.leftPresences[0].name, 'Ada');
      await until(() => !watcher.presenceState().ada && !chLate.presenceState().ada, 'ada gone everywhere');
      assert.equal(watcher.state, 'joined');
    });

    it('a socket that drops without leaving is untracked (presence_diff leave)', async () => {
      const w = await rt.client();
      const leaves = collector('leaves');
      const watcher = w.channel('pr-drop', { config: { presence: { key: 'watcher' } } }).on('presence', { event: 'leave' }, leaves.push);
      await subscribed(watcher);
      // No reconnect for the leaver: the leave must come from the server noticing the drop.
      const leaver = await rt.client({ realtime: { reconnectAfterMs: () => 60_000 } });
      const ch = leaver.channel('pr-drop', { config: { presence: { key: 'bob' } } });
      await subscribed(ch);
      assert.equal(await ch.track({ name: 'Bob' }), 'ok');
      await until(() => watcher.presenceState().bob, 'bob tracked');
      killSocket(leaver);
      const l = await leaves.waitFor((e) => e.key === 'bob', 5000);
      assert.equal(l.leftPresences[0].name, 'Bob');
      assert.equal(watcher.presenceState().bob, undefined);
      leaver.realtime.disconnect();
    });

    it('one presence key tracked from two sockets holds two metas until each leaves', async () => {
      const w = await rt.client();
      const watcher = w.channel('pr-multi', { config: { presence: { key: 'w' } } }).on('presence', { event: 'sync' }, () => {});
      await subscribed(watcher);
      const tabs = [];
      for (const device of ['phone', 'laptop']) {
        const c = await rt.client();
        const ch = c.channel('pr-multi', { config: { presence: { key: 'dana' } } });
        await subscribed(ch);
        assert.equal(await ch.track({ device }), 'ok');
        tabs.push(ch);
      }
      await until(() => watcher.presenceState().dana?.length === 2, `two metas for dana: ${JSON.stringify(watcher.presenceState())}`);
      assert.deepEqual(watcher.presenceState().dana.map((m) => m.device).sort(), ['laptop', 'phone']);
      assert.equal(await tabs[0].untrack(), 'ok');
      await until(() => watcher.presenceState().dana?.length === 1, 'one meta left');
      assert.equal(watcher.presenceState().dana[0].device, 'laptop');
    });

    it('leaving a channel (phx_leave) untracks too', async () => {
      const w = await rt.client();
      const watcher = w.channel('pr-leave', { config: { presence: { key: 'w' } } }).on('presence', { event: 'sync' }, () => {});
      await subscribed(watcher);
      const u = await rt.client();
      const ch = u.channel('pr-leave', { config: { presence: { key: 'cy' } } });
      await subscribed(ch);
      assert.equal(await ch.track({ name: 'Cy' }), 'ok');
      await until(() => watcher.presenceState().cy, 'cy tracked');
      assert.equal(await ch.unsubscribe(), 'ok');
      await until(() => !watcher.presenceState().cy, 'cy gone after leaving');
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('private channels', () => {
    it('joins only where a realtime.messages SELECT policy allows', async () => {
      const a = await rt.client({ token: rt.userJwt(A) });
      await subscribed(a.channel('vip', { config: { private: true } }));
      await subscribed(a.channel(`user:${A}`, { config: { private: true } }));
      await assertJoinRefused(a.channel(`user:${B}`, { config: { private: true } }), 'A on B\'s private topic');
      await assertJoinRefused(a.channel('no-policy-here', { config: { private: true } }), 'a topic no policy covers');
      const anon = await rt.client();
      await assertJoinRefused(anon.channel('vip', { config: { private: true } }), 'anon (policies are TO authenticated)');
      // Without private: true, the topic is a public channel open to anyone.
      await subscribed((await rt.client()).channel('vip'));
      // service_role bypasses policies.
      const s = await rt.client({ key: srv.serviceKey });
      await subscribed(s.channel('no-policy-here', { config: { private: true } }));
    });

    it('broadcasts on a private channel need an INSERT policy', async () => {
      const a = await rt.client({ token: rt.userJwt(A) });
      const b = await rt.client({ token: rt.userJwt(B) });
      const vipB = collector('vip b');
      const roB = collector('readonly b');
      const chVipA = a.channel('vip', { config: { private: true, broadcast: { ack: true } } });
      const chRoA = a.channel('readonly', { config: { private: true, broadcast: { ack: true } } });
      await subscribed(chVipA);
      await subscribed(chRoA);
      await subscribed(b.channel('vip', { config: { private: true } }).on('broadcast', { event: 'm' }, vipB.push));
      await subscribed(b.channel('readonly', { config: { private: true } }).on('broadcast', { event: 'm' }, roB.push));
      assert.equal(await chVipA.send({ type: 'broadcast', event: 'm', payload: { ok: true } }), 'ok');
      assert.deepEqual((await vipB.waitFor()).payload, { ok: true });
      // Supabase answers nothing (ack times out) or an error; either way nothing is delivered.
      await chRoA.send({ type: 'broadcast', event: 'm', payload: { ok: false } }, { timeout: 1000 });
      await roB.expectNone(400, () => true, 'no delivery without an INSERT policy');
      assert.equal(chRoA.state, 'joined', 'a refused write does not close the channel');
      // REST writes to a private topic are checked the same way.
      const restRo = await fetch(`${srv.url}/realtime/v1/api/broadcast`, {
        method: 'POST',
        headers: { apikey: srv.anonKey, Authorization: `Bearer ${rt.userJwt(A)}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: 'readonly', event: 'm', payload: { via: 'rest' }, private: true }] }),
      });
      await restRo.text();
      const restVip = await fetch(`${srv.url}/realtime/v1/api/broadcast`, {
        method: 'POST',
        headers: { apikey: srv.anonKey, Authorization: `Bearer ${rt.userJwt(A)}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: 'vip', event: 'm', payload: { via: 'rest' }, private: true }] }),
      });
      assert.equal(restVip.status, 202, await restVip.text());
      await vipB.waitFor((m) => m.payload.via === 'rest');
      await roB.expectNone(200, () => true, 'no REST delivery to a private topic without an INSERT policy');
    });
  });
});

// Private channels with the policies of Supabase's Realtime Authorization guide, which tell
// broadcast and presence apart by realtime.messages.extension.
const DOC_POLICIES = `
CREATE POLICY "receive broadcasts" ON "realtime"."messages" FOR SELECT TO authenticated
  USING (realtime.messages.extension IN ('broadcast') AND realtime.topic() LIKE 'team-%');
CREATE POLICY "send broadcasts" ON "realtime"."messages" FOR INSERT TO authenticated
  WITH CHECK (realtime.messages.extension IN ('broadcast') AND realtime.topic() = 'team-talk');
CREATE POLICY "listen to presence" ON "realtime"."messages" FOR SELECT TO authenticated
  USING (realtime.messages.extension IN ('presence') AND realtime.topic() LIKE 'team-%');
CREATE POLICY "track presence" ON "realtime"."messages" FOR INSERT TO authenticated
  WITH CHECK (realtime.messages.extension IN ('presence') AND realtime.topic() = 'team-presence');
`;

describe('realtime private channels: extension-specific policies', () => {
  let srv;
  let rt;
  before(async () => {
    srv = await startServer({ migrations: { '001_policies.sql': DOC_POLICIES } });
    rt = realtimeKit(srv);
  });
  after(async () => {
    await rt?.closeAll();
    await srv?.stop();
  });

  const open = async (who, topic, config = {}) => {
    const c = await rt.client({ token: rt.userJwt(who) });
    const ch = c.channel(topic, { config: { private: true, ...config } });
    return ch;
  };

  it('joins where a SELECT policy allows, and refuses elsewhere', async () => {
    await subscribed(await open(A, 'team-talk'));
    await assertJoinRefused(await open(A, 'elsewhere'), 'no policy for this topic');
  });

  it('broadcast needs the broadcast INSERT policy', async () => {
    const talkB = collector('team-talk b');
    const presB = collector('team-presence b');
    const chTalkA = await open(A, 'team-talk', { broadcast: { ack: true } });
    const chPresA = await open(A, 'team-presence', { broadcast: { ack: true } });
    await subscribed(chTalkA);
    await subscribed(chPresA);
    await subscribed((await open(B, 'team-talk')).on('broadcast', { event: 'm' }, talkB.push));
    await subscribed((await open(B, 'team-presence')).on('broadcast', { event: 'm' }, presB.push));
    assert.equal(await chTalkA.send({ type: 'broadcast', event: 'm', payload: { ok: 1 } }), 'ok');
    await talkB.waitFor();
    await chPresA.send({ type: 'broadcast', event: 'm', payload: { ok: 0 } }, { timeout: 1000 });
    await presB.expectNone(400, () => true, 'no broadcast where only presence may be written');
  });

  it('presence track needs the presence INSERT policy', async () => {
    const watchPres = (await open(B, 'team-presence', { presence: { key: 'b' } })).on('presence', { event: 'sync' }, () => {});
    const watchTalk = (await open(B, 'team-talk', { presence: { key: 'b' } })).on('presence', { event: 'sync' }, () => {});
    await subscribed(watchPres);
    await subscribed(watchTalk);
    const pres = await open(A, 'team-presence', { presence: { key: 'a' } });
    const talk = await open(A, 'team-talk', { presence: { key: 'a' } });
    await subscribed(pres);
    await subscribed(talk);
    assert.equal(await pres.track({ name: 'A' }), 'ok');
    await until(() => watchPres.presenceState().a, 'A tracked where the presence policy allows');
    const refused = await talk.track({ name: 'A' }, { timeout: 2000 });
    assert.notEqual(refused, 'ok', 'Supabase replies error to a track without the presence write policy');
    await sleep(400);
    assert.equal(
      watchTalk.presenceState().a,
      undefined,
      `A must not appear on team-talk, where only broadcasts may be written: ${JSON.stringify(watchTalk.presenceState())}`,
    );
  });
});

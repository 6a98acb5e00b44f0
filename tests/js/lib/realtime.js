// Helpers for the /realtime/v1 suites: supabase-js clients that can open a realtime socket in
// Node 20 (the `ws` package as transport), a `subscribed()` promise, an event collector, and a
// raw Phoenix-frame WebSocket client for wire-level checks.
//
//   const rt = realtimeKit(srv);
//   const alice = await rt.client({ token: rt.userJwt(A) });   // channels join with Alice's JWT
//   const events = collector();
//   await subscribed(alice.channel('x').on('postgres_changes', {...}, events.push));
//   await events.waitFor((e) => e.new.id === 1);
//   await rt.closeAll();
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from '@supabase/supabase-js';

export { WebSocket };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nowSec = () => Math.floor(Date.now() / 1000);

/** Default wait for something that should happen promptly. */
export const WAIT_MS = 5000;

function show(v) {
  try {
    return JSON.stringify(v, (k, x) => (typeof x === 'string' && x.length > 200 ? `${x.slice(0, 200)}…` : x));
  } catch {
    return String(v);
  }
}

/** Poll `fn` until it returns something truthy; returns that value. */
export async function until(fn, what, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A per-suite factory of realtime-capable supabase-js clients for one server; `closeAll()`
 * removes every channel and closes every socket it opened.
 */
export function realtimeKit(srv) {
  const clients = [];
  const raws = [];

  /**
   * A supabase-js client whose realtime socket uses `ws`.
   * @param {object} [o]
   * @param {string} [o.key] API key (apikey URL param and REST apikey); anon key by default
   * @param {string|(() => string)} [o.token] a JWT the channels join with (and REST calls use):
   *   passed as supabase-js's `accessToken` option, so realtime-js never swaps it for the
   *   API key. A function is re-read whenever the client asks (setAuth(), heartbeats, rejoins).
   * @param {object} [o.realtime] extra realtime options
   * Async: it resolves once realtime-js holds the token, so the first join carries it (a
   * channel subscribed synchronously after createClient() would join without access_token).
   */
  async function client({ key = srv.anonKey, token, realtime = {} } = {}) {
    const options = {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      realtime: { transport: WebSocket, params: { eventsPerSecond: 1000 }, ...realtime },
    };
    if (token !== undefined) {
      options.accessToken = async () => (typeof token === 'function' ? token() : token);
    }
    const c = createClient(srv.url, key, options);
    clients.push(c);
    await c.realtime.setAuth();
    return c;
  }

  /** A raw Phoenix-frame socket (see `openRaw`), closed by closeAll(). */
  async function raw(opts = {}) {
    const r = await openRaw(srv, opts);
    raws.push(r);
    return r;
  }

  /** A user's access token: role authenticated, sub = `sub`. */
  function userJwt(sub, extra = {}) {
    return srv.mintJwt({ sub, role: 'authenticated', aud: 'authenticated', ...extra });
  }

  async function closeAll() {
    for (const r of raws.splice(0)) r.ws.terminate();
    await Promise.all(
      clients.splice(0).map(async (c) => {
        try {
          await Promise.race([c.removeAllChannels(), sleep(1000)]);
        } catch {
          // already gone
        }
        try {
          c.realtime.disconnect();
        } catch {
          // already gone
        }
      }),
    );
  }

  return { client, raw, userJwt, closeAll, clients };
}

/**
 * Subscribe `channel` (after its `.on(...)` bindings); resolves with the channel on SUBSCRIBED,
 * rejects on CHANNEL_ERROR, TIMED_OUT or CLOSED (error.status holds the status) or when nothing
 * happens within `timeoutMs`.
 */
export function subscribed(channel, timeoutMs = WAIT_MS) {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      reject(Object.assign(new Error(`${channel.topic}: no SUBSCRIBED within ${timeoutMs} ms (state ${channel.state})`), { status: 'NO_ANSWER' }));
    }, timeoutMs);
    channel.subscribe((status, err) => {
      if (done) return;
      if (status === 'SUBSCRIBED') {
        done = true;
        clearTimeout(timer);
        resolve(channel);
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT' || status === 'CLOSED') {
        done = true;
        clearTimeout(timer);
        const e = new Error(`${channel.topic}: ${status}${err ? `: ${err.message}` : ''}`);
        e.status = status;
        e.cause = err;
        reject(e);
      }
    });
  });
}

/** Assert `subscribed(channel)` fails with CHANNEL_ERROR; returns the error. */
export async function assertJoinRefused(channel, ctx = '') {
  let err;
  try {
    await subscribed(channel);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${ctx}: joining ${channel.topic} must fail, but it was SUBSCRIBED`);
  assert.equal(err.status, 'CHANNEL_ERROR', `${ctx}: expected CHANNEL_ERROR, got ${err.message}`);
  // Phoenix would keep retrying an errored join; drop the channel.
  await Promise.race([channel.socket.removeChannel(channel).catch(() => {}), sleep(500)]);
  return err;
}

/**
 * Collects events. Pass `c.push` as a callback. `waitFor(pred)` resolves with the first event
 * (seen so far or later) satisfying `pred`; `waitForCount(n)` with the list once it has n;
 * `expectNone(ms, pred)` waits and asserts nothing (matching) arrived.
 */
export function collector(name = 'events') {
  const items = [];
  const waiters = new Set();
  const c = {
    items,
    push: (e) => {
      items.push(e);
      for (const w of waiters) w();
    },
    clear: () => {
      items.length = 0;
    },
    get length() {
      return items.length;
    },
    waitFor(pred = () => true, timeoutMs = WAIT_MS, what = 'a matching event') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = items.find(pred);
          if (hit !== undefined) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}; got ${items.length}: ${show(items.slice(-10))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    waitForCount(n, timeoutMs = WAIT_MS) {
      return c.waitFor((_e, i) => i === n - 1, timeoutMs, `${n} events`).then(() => items.slice());
    },
    async expectNone(ms = 500, pred = () => true, what = 'no events') {
      await sleep(ms);
      const bad = items.filter(pred);
      assert.equal(bad.length, 0, `${name}: expected ${what}, got ${show(bad)}`);
    },
  };
  return c;
}

/** Drop a supabase-js client's socket without a phx_leave or close frame (TCP just goes). */
export function killSocket(client) {
  const conn = client.realtime.socketAdapter.getSocket().conn;
  assert.ok(conn && typeof conn.terminate === 'function', 'the client has no ws connection to kill');
  conn.terminate();
}

/** Decode a server→client binary broadcast frame (kind 4). */
export function decodeBroadcastFrame(buf) {
  const b = Buffer.from(buf);
  if (b[0] !== 4) return { kind: b[0], raw: b };
  const topicLen = b[1];
  const eventLen = b[2];
  const metaLen = b[3];
  const encoding = b[4];
  let at = 5;
  const topic = b.subarray(at, (at += topicLen)).toString('utf8');
  const event = b.subarray(at, (at += eventLen)).toString('utf8');
  const metaText = b.subarray(at, (at += metaLen)).toString('utf8');
  const body = b.subarray(at);
  const payload = encoding === 1 ? JSON.parse(body.toString('utf8')) : body;
  return { kind: 4, topic, event, meta: metaText ? JSON.parse(metaText) : undefined, payload };
}

/**
 * A raw WebSocket to /realtime/v1/websocket speaking Phoenix frames by hand.
 * `inbox` holds decoded frames: vsn 2.0.0 text → the array; vsn 1.0.0 → the object; binary →
 * `{binary: true, ...decodeBroadcastFrame}`. `next(pred)` waits for a frame satisfying pred.
 */
export function openRaw(srv, { vsn = '2.0.0', apikey = srv.anonKey, query } = {}) {
  const params = new URLSearchParams();
  if (apikey !== null) params.set('apikey', apikey);
  if (vsn !== null) params.set('vsn', vsn);
  for (const [k, v] of Object.entries(query ?? {})) params.set(k, v);
  const url = `${srv.url.replace(/^http/, 'ws')}/realtime/v1/websocket?${params}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const inbox = [];
    const texts = [];
    const waiters = new Set();
    let closed = null;
    const closedP = new Promise((r) => ws.on('close', (code, reason) => {
      closed = { code, reason: reason.toString() };
      for (const w of waiters) w();
      r(closed);
    }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        inbox.push({ binary: true, ...decodeBroadcastFrame(data) });
      } else {
        const text = data.toString('utf8');
        texts.push(text);
        try {
          inbox.push(JSON.parse(text));
        } catch {
          inbox.push({ unparsable: text });
        }
      }
      for (const w of waiters) w();
    });
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
    });
    ws.on('open', () => {
      const r = {
        ws,
        inbox,
        texts,
        url,
        get closed() {
          return closed;
        },
        closedP,
        send(frame) {
          ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
        },
        /** Wait for a frame (already received or later) satisfying `pred`. */
        next(pred, timeoutMs = WAIT_MS, what = 'a matching frame') {
          return new Promise((res, rej) => {
            const check = () => {
              const hit = inbox.find(pred);
              if (hit !== undefined) {
                waiters.delete(check);
                clearTimeout(timer);
                res(hit);
                return true;
              }
              if (closed) {
                waiters.delete(check);
                clearTimeout(timer);
                rej(new Error(`socket closed (${closed.code} ${closed.reason}) while waiting for ${what}; inbox: ${show(inbox.slice(-10))}`));
                return true;
              }
              return false;
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; inbox: ${show(inbox.slice(-10))}`));
            }, timeoutMs);
            if (!check()) waiters.add(check);
          });
        },
        /** vsn 2.0.0: the phx_reply to `ref`. */
        reply(ref, timeoutMs) {
          return r.next((m) => Array.isArray(m) && m[1] === ref && m[3] === 'phx_reply', timeoutMs, `phx_reply to ref ${ref}`);
        },
        /** vsn 2.0.0: send phx_join on `topic` (join_ref = ref) and return the reply frame. */
        async join(topic, ref, payload = { config: {} }) {
          r.send([ref, ref, topic, 'phx_join', payload]);
          return r.reply(ref);
        },
        close() {
          ws.terminate();
        },
      };
      resolve(r);
    });
  });
}

/** The binary broadcast push (kind 3) realtime-js sends for `send({type:'broadcast'})`. */
export function encodeBroadcastPush(joinRef, ref, topic, event, payload) {
  const strs = [joinRef, ref, topic, event, ''].map((s) => Buffer.from(s, 'utf8'));
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const head = Buffer.from([3, ...strs.map((s) => s.length), 1]);
  return Buffer.concat([head, ...strs, body]);
}

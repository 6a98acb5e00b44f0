// Realtime load driver, run by bench/run.py --realtime.
//
//   node driver.mjs outpost <url> <anonKey> <serviceKey> <sockets> <inserts>
//   node driver.mjs pocketbase <url> <superuserToken> <sockets> <inserts>
//   node driver.mjs broadcast <url> <anonKey> <receivers> <messages>
//
// Prints one JSON line: latencies from commit to receipt (p50/p99, ms), deliveries, errors.
import WebSocket from 'ws';

const [kind, url, ...rest] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function openOutpost(anon, n, topic, config, onMessage) {
  const wsUrl = url.replace(/^http/, 'ws') + `/realtime/v1/websocket?apikey=${anon}&vsn=2.0.0`;
  const sockets = [];
  let joined = 0;
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    const opening = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      opening.push(new Promise((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        ws.on('error', reject);
        ws.on('open', () => {
          ws.send(JSON.stringify(['1', '1', topic, 'phx_join', { config, access_token: anon }]));
        });
        ws.on('message', (data) => {
          const [, ref, , event, payload] = JSON.parse(data.toString());
          if (event === 'phx_reply' && ref === '1') {
            joined++;
            resolve(ws);
          } else if (onMessage) {
            onMessage(event, payload, j);
          }
        });
      }));
    }
    sockets.push(...(await Promise.all(opening)));
  }
  return { sockets, joined };
}

async function outpost() {
  const [anon, service, n, inserts] = rest;
  const latencies = [];
  let deliveries = 0;
  const config = { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'rt_bench' }] };
  const { sockets, joined } = await openOutpost(anon, Number(n), 'realtime:bench', config, (event, payload) => {
    if (event !== 'postgres_changes') return;
    deliveries++;
    latencies.push(Date.now() - Date.parse(payload.data.commit_timestamp));
  });
  console.error(`opened ${joined} sockets`);
  console.log(JSON.stringify({ ready: joined }));
  // Wait for the harness to sample memory.
  await sleep(3000);
  const h = { apikey: service, Authorization: `Bearer ${service}`, 'Content-Type': 'application/json' };
  for (let i = 0; i < Number(inserts); i++) {
    const res = await fetch(`${url}/rest/v1/rt_bench`, { method: 'POST', headers: h, body: JSON.stringify({ n: i }) });
    if (res.status !== 201) throw new Error(`insert: ${res.status} ${await res.text()}`);
    await sleep(100);
  }
  const expected = Number(n) * Number(inserts);
  const deadline = Date.now() + 60000;
  while (deliveries < expected && Date.now() < deadline) await sleep(100);
  for (const s of sockets) s.terminate();
  console.log(JSON.stringify({ sockets: joined, deliveries, expected, p50: pct(latencies, 50), p99: pct(latencies, 99) }));
}

async function pocketbase() {
  const [token, n, inserts] = rest;
  const latencies = [];
  let deliveries = 0;
  let open = 0;
  const controllers = [];
  const subscribe = async () => {
    const ctrl = new AbortController();
    controllers.push(ctrl);
    const res = await fetch(`${url}/api/realtime`, { signal: ctrl.signal });
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let clientId = null;
    const pump = async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ done: true }));
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('');
          const ev = block.split('\n').find((l) => l.startsWith('event:'))?.slice(6).trim();
          if (ev === 'PB_CONNECT') clientId = JSON.parse(data).clientId;
          else if (ev === 'rt_bench' && data) {
            const msg = JSON.parse(data);
            deliveries++;
            latencies.push(Date.now() - Date.parse(msg.record.created.replace(' ', 'T')));
          }
        }
      }
    };
    pump();
    while (!clientId) await sleep(5);
    const sub = await fetch(`${url}/api/realtime`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: token },
      body: JSON.stringify({ clientId, subscriptions: ['rt_bench'] }),
    });
    if (sub.status !== 204) throw new Error(`subscribe: ${sub.status}`);
    open++;
  };
  for (let i = 0; i < Number(n); i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, Number(n) - i) }, subscribe));
  }
  console.error(`opened ${open} SSE streams`);
  console.log(JSON.stringify({ ready: open }));
  await sleep(3000);
  for (let i = 0; i < Number(inserts); i++) {
    const res = await fetch(`${url}/api/collections/rt_bench/records`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: token }, body: JSON.stringify({ n: i }),
    });
    if (res.status !== 200) throw new Error(`insert: ${res.status}`);
    await sleep(100);
  }
  const expected = Number(n) * Number(inserts);
  const deadline = Date.now() + 60000;
  while (deliveries < expected && Date.now() < deadline) await sleep(100);
  for (const c of controllers) c.abort();
  console.log(JSON.stringify({ sockets: open, deliveries, expected, p50: pct(latencies, 50), p99: pct(latencies, 99) }));
}

async function broadcast() {
  const [anon, receivers, messages] = rest;
  let received = 0;
  const config = { broadcast: { self: false } };
  const { sockets } = await openOutpost(anon, Number(receivers) + 1, 'realtime:chat', config, (event) => {
    if (event === 'broadcast') received++;
  });
  console.log(JSON.stringify({ ready: sockets.length }));
  await sleep(2500);
  const sender = sockets[0];
  const expected = Number(receivers) * Number(messages);
  const started = Date.now();
  // At most `window` messages in flight (sent but not yet seen by every receiver): the rate is
  // what the server sustains, not how fast the driver can queue.
  const window = 20;
  for (let i = 0; i < Number(messages); i++) {
    while (i - received / Number(receivers) >= window) await sleep(1);
    sender.send(JSON.stringify(['1', String(i + 2), 'realtime:chat', 'broadcast', { type: 'broadcast', event: 'm', payload: { i } }]));
  }
  const deadline = Date.now() + 60000;
  while (received < expected && Date.now() < deadline) await sleep(20);
  const seconds = (Date.now() - started) / 1000;
  for (const s of sockets) s.terminate();
  console.log(JSON.stringify({ messages: Number(messages), receivers: Number(receivers), received, expected, deliveries_per_s: received / seconds, messages_per_s: Number(messages) / seconds }));
}

const run = { outpost, pocketbase, broadcast }[kind];
run().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });

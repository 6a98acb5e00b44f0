// Test harness: starts a real Outpost binary on a free port with its own
// temporary data dir and migrations, mints API keys, and tears it all down.
//
//   const srv = await startServer({ migrations: { '001_schema.sql': SQL } });
//   ... srv.url, srv.anonKey, srv.serviceKey, srv.mintJwt({...}), srv.client('service')
//   await srv.stop();

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@supabase/supabase-js';

const here = path.dirname(fileURLToPath(import.meta.url));
// tests/js/lib -> tests/js -> ../../target/debug/outpost
export const JS_ROOT = path.resolve(here, '..');
export const OUTPOST_BIN = process.env.OUTPOST_BIN
  ? path.resolve(process.env.OUTPOST_BIN)
  : path.resolve(JS_ROOT, '../../target/debug/outpost');

const READY_TIMEOUT_MS = 20_000;
const KEEP_LOG_BYTES = 64 * 1024;

/** Stand-in WebSocket for runtimes without one (REST-only suites never connect). */
class NoWebSocket {
  constructor() {
    throw new Error('No WebSocket in this Node.js; run with Node 22+ or --experimental-websocket for realtime tests');
  }
}

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

/** Sign an HS256 JWT with node's crypto (no jsonwebtoken dependency). */
export function signJwt(claims, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const head = b64url(JSON.stringify(header));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Decode (without verifying) the payload of a JWT. */
export function decodeJwt(token) {
  const [, body] = token.split('.');
  return JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
}

function tail(buf) {
  return buf.length > KEEP_LOG_BYTES ? buf.slice(buf.length - KEEP_LOG_BYTES) : buf;
}

/**
 * Start an Outpost server.
 * @param {object} opts
 * @param {Record<string,string>} [opts.migrations] file name -> SQL (applied in name order)
 * @param {Record<string,string>} [opts.env] extra environment variables
 * @param {string[]} [opts.args] extra CLI args for `serve`
 */
export async function startServer({ migrations = {}, env = {}, args = [] } = {}) {
  if (!existsSync(OUTPOST_BIN)) {
    throw new Error(
      `Outpost binary not found at ${OUTPOST_BIN}. Run \`cargo build\` in the repo root or set OUTPOST_BIN.`,
    );
  }
  const root = await mkdtemp(path.join(tmpdir(), 'outpost-js-'));
  const dataDir = path.join(root, 'data');
  const migrationsDir = path.join(root, 'migrations');
  await mkdir(dataDir, { recursive: true });
  await mkdir(migrationsDir, { recursive: true });
  for (const [name, sql] of Object.entries(migrations)) {
    await writeFile(path.join(migrationsDir, name), sql);
  }

  const secret = `test-secret-${randomBytes(24).toString('hex')}`; // >= 32 chars
  const childEnv = {
    ...process.env,
    OUTPOST_JWT_SECRET: secret,
    RUST_BACKTRACE: '1',
    ...env,
  };
  const child = spawn(
    OUTPOST_BIN,
    ['serve', '--http', '127.0.0.1:0', '--data-dir', dataDir, '--migrations-dir', migrationsDir, ...args],
    { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );

  let stdout = '';
  let stderr = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const url = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    const describe = (why) =>
      new Error(
        `Outpost did not become ready: ${why}\n` +
          `command: ${OUTPOST_BIN} serve --http 127.0.0.1:0 --data-dir ${dataDir} --migrations-dir ${migrationsDir}\n` +
          `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
      );
    const timer = setTimeout(
      () => finish(describe(`no "listening on http://..." line on stdout within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout = tail(stdout + chunk);
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m) finish(null, m[1].replace(/\/+$/, ''));
    });
    child.stderr.on('data', (chunk) => {
      stderr = tail(stderr + chunk);
    });
    child.on('error', (err) => finish(describe(`spawn failed: ${err.message}`)));
    exitPromise.then(({ code, signal }) => finish(describe(`process exited early (code ${code}, signal ${signal})`)));
  }).catch(async (err) => {
    if (!exited) child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
    throw err;
  });

  // Wait for /health to answer 200 (the contract says it does once ready).
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastHealth = '';
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.status === 200) {
        await res.text();
        break;
      }
      lastHealth = `status ${res.status}: ${await res.text()}`;
    } catch (e) {
      lastHealth = String(e);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
      throw new Error(`GET ${url}/health never answered 200 (last: ${lastHealth})\n--- stderr ---\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const now = Math.floor(Date.now() / 1000);
  const mintJwt = (claims = {}) =>
    signJwt({ iss: 'outpost', iat: now, exp: now + 3600, ...claims }, secret);
  const anonKey = mintJwt({ role: 'anon' });
  const serviceKey = mintJwt({ role: 'service_role' });

  const clientOptions = {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    // supabase-js 2.119 wants a WebSocket constructor at construction time; Node 20 has none
    // without --experimental-websocket. These suites never open a socket.
    realtime: { transport: globalThis.WebSocket ?? NoWebSocket },
  };
  /** Build a supabase-js client. `as` = 'service' | 'anon' | any JWT/API key string. */
  const client = (as = 'service', extra = {}) => {
    const key = as === 'service' ? serviceKey : as === 'anon' ? anonKey : as;
    return createClient(url, key, { ...clientOptions, ...extra });
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 5000);
      await exitPromise;
      clearTimeout(t);
    }
    await rm(root, { recursive: true, force: true });
  };

  return {
    url,
    restUrl: `${url}/rest/v1`,
    anonKey,
    serviceKey,
    secret,
    dataDir,
    migrationsDir,
    mintJwt,
    client,
    stop,
    logs: () => ({ stdout, stderr }),
    process: child,
  };
}

/** Plain fetch against /rest/v1 with the service key unless headers say otherwise. */
export async function rest(srv, pathAndQuery, { method = 'GET', headers = {}, body, key } = {}) {
  const k = key ?? srv.serviceKey;
  const h = { apikey: k, Authorization: `Bearer ${k}`, ...headers };
  if (body !== undefined && !Object.keys(h).some((x) => x.toLowerCase() === 'content-type')) {
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${srv.restUrl}${pathAndQuery}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

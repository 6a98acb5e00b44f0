// A real S3-compatible server for the storage suite: moto_server (PyPI `moto[server]`, pinned)
// from a virtualenv at tests/js/.venv-moto that is created on first use and reused afterwards.
//
//   const s3 = await startS3();          // {endpoint, bucket, env, envFor, createBucket, listKeys, stop}
//   const srv = await startServer({ env: s3.env });
//   ... await s3.listKeys()              // what is really in the S3 bucket
//   const env2 = s3.envFor(await s3.createBucket('other'));   // a second, separate bucket
//   await s3.stop();
//
// Needs `python3` with the venv module (Debian: python3-venv) and access to PyPI the first time.
// OUTPOST_PYTHON picks another interpreter; OUTPOST_MOTO_VENV another venv directory.

import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { JS_ROOT } from './server.js';

const execFileP = promisify(execFile);

export const MOTO_VERSION = '5.2.5';
export const MOTO_VENV = process.env.OUTPOST_MOTO_VENV
  ? path.resolve(process.env.OUTPOST_MOTO_VENV)
  : path.join(JS_ROOT, '.venv-moto');
const MARKER = path.join(MOTO_VENV, `.outpost-moto-${MOTO_VERSION}`);
const LOCK = `${MOTO_VENV}.lock`;
const READY_TIMEOUT_MS = 30_000;
const KEEP_LOG_BYTES = 32 * 1024;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function run(cmd, args, what) {
  try {
    return await execFileP(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 });
  } catch (e) {
    throw new Error(
      `${what} failed: ${cmd} ${args.join(' ')}\n${e.message}\n--- stdout ---\n${e.stdout ?? ''}\n--- stderr ---\n${e.stderr ?? ''}\n` +
        'The S3 suite needs python3 with venv support (Debian: apt-get install python3-venv) and PyPI access ' +
        'the first time (the venv is cached afterwards).',
    );
  }
}

/** Take a directory lock so parallel test files do not build the venv twice. */
async function withLock(fn) {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      if (Date.now() > deadline) throw new Error(`lock ${LOCK} held for 15 minutes; remove it if stale`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

/** Create (or reuse) the venv with moto[server] pinned; returns the moto_server path. */
export async function ensureMoto() {
  const bin = path.join(MOTO_VENV, 'bin', 'moto_server');
  if (existsSync(MARKER) && existsSync(bin)) return bin;
  return withLock(async () => {
    if (existsSync(MARKER) && existsSync(bin)) return bin;
    await rm(MOTO_VENV, { recursive: true, force: true });
    const python = process.env.OUTPOST_PYTHON || 'python3';
    await run(python, ['-m', 'venv', MOTO_VENV], 'creating the moto venv');
    const pip = path.join(MOTO_VENV, 'bin', 'pip');
    await run(
      pip,
      ['install', '--quiet', '--disable-pip-version-check', `moto[server]==${MOTO_VERSION}`],
      `pip install moto[server]==${MOTO_VERSION}`,
    );
    if (!existsSync(bin)) throw new Error(`${bin} missing after installing moto[server]==${MOTO_VERSION}`);
    await writeFile(MARKER, `moto[server]==${MOTO_VERSION}\n`);
    return bin;
  });
}

/** A free TCP port on 127.0.0.1 (bound and released; the race window is tiny). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tail(s) {
  return s.length > KEEP_LOG_BYTES ? s.slice(s.length - KEEP_LOG_BYTES) : s;
}

/**
 * Start moto_server on 127.0.0.1:<free port>, wait for it, create `bucket` with a plain unsigned
 * PUT, and return {endpoint, bucket, region, env, listKeys, stop, logs}.
 * `env` is what Outpost needs to keep its object bytes there.
 */
export async function startS3({ bucket = 'outpost-test' } = {}) {
  const bin = await ensureMoto();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let exited = null;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c) => (out = tail(out + c)));
  child.stderr.on('data', (c) => (out = tail(out + c)));
  const exitPromise = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  child.on('error', (e) => {
    out += `\nspawn error: ${e.message}`;
  });

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
  };

  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = '';
    for (;;) {
      if (exited) throw new Error(`moto_server exited early (${JSON.stringify(exited)})`);
      try {
        const res = await fetch(`${endpoint}/`);
        await res.arrayBuffer();
        if (res.status < 500) break;
        last = `status ${res.status}`;
      } catch (e) {
        last = String(e.cause?.code ?? e.message);
      }
      if (Date.now() > deadline) throw new Error(`moto_server did not answer on ${endpoint} (last: ${last})`);
      await sleep(150);
    }
    await createBucket(endpoint, bucket);
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n--- moto_server output ---\n${out}`);
  }

  /** Outpost's env for keeping object bytes in `name` (default: the first bucket). */
  const envFor = (name = bucket) => ({
    OUTPOST_STORAGE_BACKEND: 's3',
    OUTPOST_STORAGE_S3_BUCKET: name,
    OUTPOST_STORAGE_S3_ENDPOINT: endpoint,
    OUTPOST_STORAGE_S3_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  });
  return {
    endpoint,
    bucket,
    region: 'us-east-1',
    env: envFor(bucket),
    envFor,
    /** Create another S3 bucket (plain unsigned PUT). */
    createBucket: (name) => createBucket(endpoint, name),
    /** Every key in an S3 bucket (default: the first one). */
    listKeys: (prefix = '', name = bucket) => listBucketKeys(endpoint, name, prefix),
    stop,
    logs: () => out,
    process: child,
  };
}

/** Create an S3 bucket with a plain unsigned PUT (moto does not check signatures) and check it exists. */
export async function createBucket(endpoint, name) {
  const put = await fetch(`${endpoint}/${name}`, { method: 'PUT' });
  const putText = await put.text();
  if (put.status !== 200) throw new Error(`PUT ${endpoint}/${name} -> ${put.status}: ${putText}`);
  const head = await fetch(`${endpoint}/${name}`, { method: 'HEAD' });
  await head.arrayBuffer();
  if (head.status !== 200) throw new Error(`HEAD ${endpoint}/${name} -> ${head.status} after creating it`);
  return name;
}

/** Every key in an S3 bucket (ListObjectsV2, unsigned), sorted. */
export async function listBucketKeys(endpoint, name, prefix = '') {
  const keys = [];
  let token = null;
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ 'list-type': '2' });
    if (prefix) q.set('prefix', prefix);
    if (token) q.set('continuation-token', token);
    const res = await fetch(`${endpoint}/${name}?${q}`);
    const xml = await res.text();
    if (res.status !== 200) throw new Error(`ListObjectsV2 ${name} -> ${res.status}: ${xml}`);
    for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(decodeXml(m[1]));
    const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
    const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml);
    if (!truncated || !next) break;
    token = decodeXml(next[1]);
  }
  return keys.sort();
}

function decodeXml(s) {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

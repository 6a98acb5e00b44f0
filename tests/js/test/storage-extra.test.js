// Storage configuration cases on the fs backend (docs/storage.md): a custom
// OUTPOST_STORAGE_FS_ROOT, bad backend settings refusing to start, the signed-URL max age, and
// objects surviving a restart on the same data dir.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from '@supabase/supabase-js';
import { startServer, OUTPOST_BIN, signJwt } from '../lib/server.js';
import { fsStoredKeys, sOk, sFails } from '../lib/storage-suite.js';

describe('storage [fs]: configuration', () => {
  test('OUTPOST_STORAGE_FS_ROOT keeps object bytes in that directory', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'outpost-fsroot-'));
    const env = { OUTPOST_STORAGE_BACKEND: 'fs', OUTPOST_STORAGE_FS_ROOT: root };
    const srv = await startServer({ env });
    try {
      const st = srv.client('service').storage;
      sOk(await st.createBucket('b'));
      const marker = `fsroot-${randomBytes(12).toString('hex')}`;
      sOk(await st.from('b').upload('dir/x.txt', marker));
      const keys = await fsStoredKeys(srv, env);
      assert.equal(keys.length, 1, `one file under ${root}: ${JSON.stringify(keys)}`);
      assert.match(keys[0], /^objects\//);
      assert.deepEqual(await fsStoredKeys(srv, {}), [], 'nothing under <data-dir>/storage');
      assert.equal(await sOk(await st.from('b').download('dir/x.txt')).text(), marker);
    } finally {
      await srv.stop();
      await rm(root, { recursive: true, force: true });
    }
  });

  const refuses = async (env, pattern) => {
    let srv;
    try {
      srv = await startServer({ env });
    } catch (e) {
      assert.match(e.message, pattern, 'the startup error should name the bad setting');
      return;
    }
    await srv.stop();
    assert.fail(`the server started with ${JSON.stringify(env)}`);
  };

  test('an unknown OUTPOST_STORAGE_BACKEND refuses to start', async () => {
    await refuses({ OUTPOST_STORAGE_BACKEND: 'ftp' }, /OUTPOST_STORAGE_BACKEND/);
  });

  test('OUTPOST_STORAGE_BACKEND=s3 without OUTPOST_STORAGE_S3_BUCKET refuses to start', async () => {
    await refuses({ OUTPOST_STORAGE_BACKEND: 's3', OUTPOST_STORAGE_S3_BUCKET: '' }, /OUTPOST_STORAGE_S3_BUCKET/);
  });

  test('a non-numeric OUTPOST_STORAGE_MAX_FILE_SIZE refuses to start', async () => {
    await refuses({ OUTPOST_STORAGE_MAX_FILE_SIZE: 'lots' }, /OUTPOST_STORAGE_MAX_FILE_SIZE/);
  });

  test('OUTPOST_STORAGE_SIGNED_URL_MAX_AGE bounds expiresIn', async () => {
    const srv = await startServer({ env: { OUTPOST_STORAGE_SIGNED_URL_MAX_AGE: '100' } });
    try {
      const st = srv.client('service').storage;
      sOk(await st.createBucket('b'));
      sOk(await st.from('b').upload('x.txt', 'x'));
      const ok = sOk(await st.from('b').createSignedUrl('x.txt', 100));
      assert.equal(await (await fetch(ok.signedUrl)).text(), 'x');
      sFails(await st.from('b').createSignedUrl('x.txt', 101), 400, 'expiresIn over the max');
      sFails(await st.from('b').createSignedUrls(['x.txt'], 101), 400, 'createSignedUrls over the max');
      sFails(await st.from('b').createSignedUrl('x.txt', 0), 400, 'expiresIn 0');
    } finally {
      await srv.stop();
    }
  });
});

/** Spawn `outpost serve` on a given data dir (server.js always makes a fresh one). */
async function serveOn(dataDir, migrationsDir, secret) {
  const child = spawn(OUTPOST_BIN, ['serve', '--http', '127.0.0.1:0', '--data-dir', dataDir, '--migrations-dir', migrationsDir], {
    env: { ...process.env, OUTPOST_JWT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => (err = (err + c).slice(-20000)));
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no listening line in 20 s\n${out}\n${err}`)), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1].replace(/\/+$/, ''));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited early (${code})\n${out}\n${err}`));
    });
  });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/health`);
      await r.text();
      if (r.status === 200) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  return { url, stop };
}

describe('storage [fs]: restart', () => {
  test('buckets, objects and their bytes survive a restart on the same data dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'outpost-restart-'));
    const dataDir = path.join(root, 'data');
    const migrationsDir = path.join(root, 'migrations');
    await mkdir(dataDir, { recursive: true });
    await mkdir(migrationsDir, { recursive: true });
    const secret = `restart-secret-${randomBytes(16).toString('hex')}`;
    const now = Math.floor(Date.now() / 1000);
    const key = signJwt({ role: 'service_role', iss: 'outpost', iat: now, exp: now + 3600 }, secret);
    const opts = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: globalThis.WebSocket ?? class {} } };
    const bytes = randomBytes(4000);
    let a;
    let b;
    try {
      a = await serveOn(dataDir, migrationsDir, secret);
      const st = createClient(a.url, key, opts).storage;
      sOk(await st.createBucket('keep', { public: true, fileSizeLimit: 10_000 }));
      sOk(await st.from('keep').upload('dir/bytes.bin', bytes, { contentType: 'application/octet-stream', metadata: { m: 1 } }));
      sOk(await st.from('keep').upload('gone.txt', 'gone'));
      sOk(await st.from('keep').remove(['gone.txt']));
      await a.stop();
      a = null;

      b = await serveOn(dataDir, migrationsDir, secret);
      const st2 = createClient(b.url, key, opts).storage;
      const bucket = sOk(await st2.getBucket('keep'));
      assert.equal(bucket.public, true);
      assert.equal(bucket.file_size_limit, 10_000);
      const got = Buffer.from(await sOk(await st2.from('keep').download('dir/bytes.bin')).arrayBuffer());
      assert.ok(got.equals(bytes), 'bytes changed across a restart');
      assert.deepEqual(sOk(await st2.from('keep').info('dir/bytes.bin')).metadata, { m: 1 });
      sFails(await st2.from('keep').download('gone.txt'), 404, 'removed object after restart');
      const pub = await fetch(`${b.url}/storage/v1/object/public/keep/dir/bytes.bin`);
      assert.equal(pub.status, 200);
      assert.ok(Buffer.from(await pub.arrayBuffer()).equals(bytes));
      assert.deepEqual(
        (await fsStoredKeys({ dataDir }, {})).length,
        1,
        'exactly the one live object has bytes on disk after the restart',
      );
    } finally {
      await a?.stop();
      await b?.stop();
      await rm(root, { recursive: true, force: true });
    }
  });
});

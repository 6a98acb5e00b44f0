// Storage API (/storage/v1) with object bytes in a real S3-compatible server: moto_server
// (PyPI moto[server], pinned in lib/s3.js) started by this file on 127.0.0.1. Each Outpost server
// the suite starts gets its own S3 bucket. The same cases as storage-fs.test.js, plus the
// OUTPOST_STORAGE_S3_ROOT key prefix and an unreachable endpoint.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startS3, listBucketKeys } from '../lib/s3.js';
import { startServer } from '../lib/server.js';
import { storageSuite, sOk, sFails } from '../lib/storage-suite.js';

let s3Promise = null;
/** moto, started once for the whole file on first use. */
const moto = () => (s3Promise ??= startS3({ bucket: 'outpost-first' }));
let counter = 0;
const freshEnv = async () => {
  const s3 = await moto();
  counter += 1;
  return s3.envFor(await s3.createBucket(`outpost-${counter}-${randomBytes(3).toString('hex')}`));
};

after(async () => {
  if (s3Promise) await (await s3Promise).stop();
});

storageSuite('s3 (moto)', freshEnv, {
  backend: 's3',
  storedKeys: (srv, env) => listBucketKeys(env.OUTPOST_STORAGE_S3_ENDPOINT, env.OUTPOST_STORAGE_S3_BUCKET),
});

describe('storage [s3 (moto)]: configuration', () => {
  test('OUTPOST_STORAGE_S3_ROOT puts every key under that prefix', async () => {
    const env = { ...(await freshEnv()), OUTPOST_STORAGE_S3_ROOT: '/tenant-a/' };
    const srv = await startServer({ env });
    try {
      const st = srv.client('service').storage;
      sOk(await st.createBucket('b'));
      sOk(await st.from('b').upload('x.txt', 'rooted'));
      sOk(await st.from('b').upload('dir/y.txt', 'rooted too'));
      const keys = await listBucketKeys(env.OUTPOST_STORAGE_S3_ENDPOINT, env.OUTPOST_STORAGE_S3_BUCKET);
      assert.equal(keys.length, 2, JSON.stringify(keys));
      for (const k of keys) assert.match(k, /^tenant-a\/objects\//, `key outside the root: ${k}`);
      assert.equal(await sOk(await st.from('b').download('dir/y.txt')).text(), 'rooted too');
    } finally {
      await srv.stop();
    }
  });

  test('two servers sharing one S3 bucket keep their objects apart (keys never come from names)', async () => {
    // Two servers on one S3 bucket with separate data dirs: metadata lives in data.db, so the
    // second server sees no objects, and its uploads do not disturb the first server's bytes.
    const env = await freshEnv();
    const a = await startServer({ env });
    const b = await startServer({ env });
    try {
      const sa = a.client('service').storage;
      const sb = b.client('service').storage;
      sOk(await sa.createBucket('same'));
      sOk(await sb.createBucket('same'));
      sOk(await sa.from('same').upload('f.txt', 'from a'));
      sFails(await sb.from('same').download('f.txt'), 404, 'b does not know a\'s object');
      sOk(await sb.from('same').upload('f.txt', 'from b'));
      assert.equal(await sOk(await sa.from('same').download('f.txt')).text(), 'from a');
      assert.equal(await sOk(await sb.from('same').download('f.txt')).text(), 'from b');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('an unreachable S3 endpoint makes uploads fail with 5xx and stores no metadata', async () => {
    const s3 = await moto();
    const env = { ...s3.envFor('never-created-bucket'), OUTPOST_STORAGE_S3_ENDPOINT: 'http://127.0.0.1:9' };
    let srv;
    try {
      srv = await startServer({ env });
    } catch (e) {
      // refusing to start with an unusable backend is also acceptable
      assert.match(String(e.message), /s3|storage|endpoint|connect/i);
      return;
    }
    try {
      const st = srv.client('service').storage;
      sOk(await st.createBucket('b'));
      const res = await st.from('b').upload('x.txt', 'nowhere to go');
      assert.ok(res.error, `upload with a dead backend must fail: ${JSON.stringify(res)}`);
      assert.ok(res.error.status >= 500, `a backend failure is a server error, got ${res.error.status} ${res.error.message}`);
      assert.deepEqual(sOk(await st.from('b').list()), [], 'no row for bytes that were never stored');
    } finally {
      await srv.stop();
    }
  });
});

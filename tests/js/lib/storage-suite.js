// The Storage API (/storage/v1) conformance suite, run once per object-byte backend:
//
//   storageSuite('fs', () => ({}), { backend: 'fs' });
//   storageSuite('s3 (moto)', async () => s3env, { backend: 's3', storedKeys: (srv, env) => ... });
//
// `makeEnv()` (sync or async) returns the extra server env for one server; it is called once per
// server the suite starts. `storedKeys(srv, env)` lists the keys really present in the byte store
// (default: files under the fs root). Driven by the real supabase-js storage client plus plain
// fetch / raw http where the client cannot say what the test needs.
//
// Supabase answers most errors with HTTP 400 and the "real" status in the body's `statusCode`
// (storage-js exposes it as `error.statusCode`); Outpost may send the real status as the HTTP
// status. Assertions accept either form, never anything else.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { startServer } from './server.js';
import { HIGH_RATE_LIMITS, signUpUser, sleep } from './authutil.js';

// ---------------------------------------------------------------------------------------------
// generic helpers

const MAX_FILE_SIZE = 300_000; // OUTPOST_STORAGE_MAX_FILE_SIZE for the main server

function errInfo(e) {
  if (!e) return null;
  return { name: e.name, status: e.status, statusCode: e.statusCode, code: e.code, message: e.message };
}

/** Short JSON of a supabase-js storage result. */
export function showRes(res) {
  return JSON.stringify({ error: errInfo(res?.error), data: res?.data }, (k, v) =>
    typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}…` : v,
  );
}

/** Whether an error (HTTP status + body statusCode) is one of `expected` statuses. */
function statusIs(httpStatus, bodyStatusCode, expected) {
  const list = Array.isArray(expected) ? expected : [expected];
  return list.some((x) => httpStatus === x || (httpStatus === 400 && String(bodyStatusCode) === String(x)));
}

/** Assert a storage-js call succeeded; return its data. */
export function sOk(res, ctx = '') {
  assert.equal(res.error, null, `expected success ${ctx}, got ${showRes(res)}`);
  return res.data;
}

/**
 * Assert a storage-js call failed with an API error whose status (HTTP, or HTTP 400 + body
 * statusCode) is one of `status`, and a non-empty message. `code` (string or array) is checked
 * against error.code when given.
 */
export function sFails(res, status, ctx = '', { code } = {}) {
  const e = res.error;
  assert.ok(e, `expected an error (${[].concat(status).join('|')}) ${ctx}, got ${showRes(res)}`);
  assert.equal(e.name, 'StorageApiError', `expected a StorageApiError ${ctx}, got ${showRes(res)}`);
  assert.ok(statusIs(e.status, e.statusCode, status), `expected status ${[].concat(status).join('|')} ${ctx}, got ${showRes(res)}`);
  assert.equal(typeof e.message, 'string', `error message must be a string ${ctx}`);
  assert.ok(e.message.length > 0, `error message must be non-empty ${ctx}: ${showRes(res)}`);
  if (code !== undefined) {
    const codes = [].concat(code);
    assert.ok(codes.includes(e.code), `expected code ${codes.join('|')} ${ctx}, got ${showRes(res)}`);
  }
  return e;
}

/** Plain fetch against /storage/v1. `key` (default service key) goes to apikey + Authorization unless auth:false. */
async function sfetch(srv, p, { method = 'GET', headers = {}, body, key, token, auth = true } = {}) {
  const h = {};
  if (auth) {
    const k = key ?? srv.serviceKey;
    h.apikey = k;
    h.Authorization = `Bearer ${token ?? k}`;
  }
  Object.assign(h, headers);
  if (body !== undefined && body !== null && typeof body === 'object' && !Buffer.isBuffer(body) && !(body instanceof Uint8Array)) {
    h['Content-Type'] ??= 'application/json';
    body = JSON.stringify(body);
  }
  const url = p.startsWith('http') ? p : `${srv.url}/storage/v1${p}`;
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString('utf8');
  let json;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text, json };
}

function showHttp(r) {
  return `${r.status} ${r.text.length > 400 ? `${r.text.slice(0, 400)}…` : r.text}`;
}

/** Assert a plain-fetch storage error: status (HTTP or 400 + body statusCode) and a JSON message. */
function assertHttpError(r, status, ctx = '') {
  assert.ok(
    statusIs(r.status, r.json?.statusCode, status),
    `expected status ${[].concat(status).join('|')} ${ctx}, got ${showHttp(r)}`,
  );
  assert.equal(typeof r.json, 'object', `error body must be JSON ${ctx}: ${showHttp(r)}`);
  assert.notEqual(r.json, null, `error body must not be null ${ctx}`);
  const msg = r.json.message ?? r.json.error ?? r.json.msg;
  assert.equal(typeof msg, 'string', `error body needs a message ${ctx}: ${showHttp(r)}`);
  assert.ok(msg.length > 0, `error message must be non-empty ${ctx}`);
  return r.json;
}

/**
 * A raw HTTP request with the path sent byte for byte (fetch would resolve `..`).
 * `cut` = number of body bytes after which the socket is destroyed (the request never completes).
 */
function rawRequest(srv, { method = 'GET', path: p, headers = {}, body, cut } = {}) {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path: p, headers: { Connection: 'close', ...headers } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          let json;
          try {
            json = text === '' ? null : JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, buf, text, json });
        });
        res.on('error', (e) => (cut !== undefined ? resolve({ status: null, aborted: true }) : reject(e)));
      },
    );
    req.on('error', (e) => (cut !== undefined ? resolve({ status: null, error: e.code }) : reject(e)));
    if (cut !== undefined) {
      req.write(body.subarray(0, cut));
      setTimeout(() => {
        req.destroy();
        resolve({ status: null, aborted: true });
      }, 300);
    } else {
      req.end(body);
    }
  });
}

const blobBytes = async (blob) => Buffer.from(await blob.arrayBuffer());
const uniq = (p = 'f') => `${p}-${randomBytes(4).toString('hex')}`;
const authHeaders = (k) => ({ apikey: k, Authorization: `Bearer ${k}` });

/** Retry `fn` until it returns truthy or `ms` passes; returns the last value. */
async function eventually(fn, ms = 5000, step = 100) {
  const deadline = Date.now() + ms;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(step);
  }
}

async function walkFiles(root) {
  const out = [];
  async function walk(dir) {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (e.code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) out.push(full);
    }
  }
  await walk(root);
  return out;
}

/** Keys under the fs store root (relative, '/'-separated). */
export async function fsStoredKeys(srv, env) {
  const root = env.OUTPOST_STORAGE_FS_ROOT ?? path.join(srv.dataDir, 'storage');
  return (await walkFiles(root)).map((f) => path.relative(root, f).split(path.sep).join('/')).sort();
}

/** Files under `dir` whose bytes contain `marker`. */
async function filesContaining(dir, marker) {
  const hits = [];
  for (const f of await walkFiles(dir)) {
    const s = await stat(f);
    if (s.size > 64 * 1024 * 1024) continue;
    if ((await readFile(f)).includes(marker)) hits.push(f);
  }
  return hits;
}

// ---------------------------------------------------------------------------------------------
// images: a PNG (zlib + crc32) and a baseline grayscale JPEG built here, and their dimensions

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid w x h RGBA PNG with a colour gradient. */
export function makePng(w = 40, h = 20) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(h * (1 + 4 * w));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + 4 * w);
    raw[row] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const o = row + 1 + 4 * x;
      raw[o] = Math.round((x * 255) / Math.max(1, w - 1));
      raw[o + 1] = Math.round((y * 255) / Math.max(1, h - 1));
      raw[o + 2] = 128;
      raw[o + 3] = 255;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A baseline grayscale JPEG (w, h multiples of 8) whose 8x8 blocks are each one shade: only DC
 * coefficients, coded with the standard luminance DC table; every block's AC part is a lone EOB.
 */
export function makeJpeg(w = 48, h = 24) {
  const seg = (marker, body) => {
    const head = Buffer.from([0xff, marker, 0, 0]);
    head.writeUInt16BE(body.length + 2, 2);
    return Buffer.concat([head, body]);
  };
  const dcBits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
  const dcVals = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  // canonical Huffman codes from BITS
  const dcCode = new Map();
  {
    let code = 0;
    let k = 0;
    for (let len = 1; len <= 16; len++) {
      for (let i = 0; i < dcBits[len - 1]; i++) dcCode.set(dcVals[k++], { code: code++, len });
      code <<= 1;
    }
  }
  const bits = [];
  const put = (value, len) => {
    for (let i = len - 1; i >= 0; i--) bits.push((value >> i) & 1);
  };
  let prev = 0;
  const bw = w / 8;
  const bh = h / 8;
  for (let by = 0; by < bh; by++) {
    for (let bx = 0; bx < bw; bx++) {
      const shade = Math.min(255, 30 + Math.round((bx * 180) / Math.max(1, bw - 1)) + by * 20);
      const dc = 8 * (shade - 128); // F(0,0) of a flat block, quantizer 1
      const diff = dc - prev;
      prev = dc;
      const mag = Math.abs(diff);
      const cat = mag === 0 ? 0 : Math.floor(Math.log2(mag)) + 1;
      const { code, len } = dcCode.get(cat);
      put(code, len);
      if (cat > 0) put(diff > 0 ? diff : diff + (1 << cat) - 1, cat);
      put(0, 1); // AC: EOB (the only code of the AC table, '0')
    }
  }
  while (bits.length % 8) bits.push(1);
  const data = [];
  for (let i = 0; i < bits.length; i += 8) {
    let b = 0;
    for (let j = 0; j < 8; j++) b = (b << 1) | bits[i + j];
    data.push(b);
    if (b === 0xff) data.push(0x00);
  }
  const sof = Buffer.from([8, 0, 0, 0, 0, 1, 1, 0x11, 0]);
  sof.writeUInt16BE(h, 1);
  sof.writeUInt16BE(w, 3);
  const acBits = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    seg(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])),
    seg(0xdb, Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 1)])),
    seg(0xc0, sof),
    seg(0xc4, Buffer.from([0x00, ...dcBits, ...dcVals])),
    seg(0xc4, Buffer.from([0x10, ...acBits, 0x00])),
    seg(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0])),
    Buffer.from(data),
    Buffer.from([0xff, 0xd9]),
  ]);
}

/** {format, width, height} of a PNG, JPEG or WebP, or {format: 'unknown'}. */
export function imageInfo(buf) {
  if (buf.length > 24 && buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return { format: 'png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  }
  if (buf.length > 4 && buf[0] === 0xff && buf[1] === 0xd8) {
    let i = 2;
    while (i + 9 < buf.length) {
      if (buf[i] !== 0xff) return { format: 'jpeg', width: null, height: null };
      const m = buf[i + 1];
      if (m === 0xff) {
        i++;
        continue;
      }
      const len = buf.readUInt16BE(i + 2);
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        return { format: 'jpeg', height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
      }
      i += 2 + len;
    }
    return { format: 'jpeg', width: null, height: null };
  }
  if (buf.length > 30 && buf.toString('ascii', 0, 4) === 'RIFF' && buf.toString('ascii', 8, 12) === 'WEBP') {
    const kind = buf.toString('ascii', 12, 16);
    if (kind === 'VP8X') return { format: 'webp', width: buf.readUIntLE(24, 3) + 1, height: buf.readUIntLE(27, 3) + 1 };
    if (kind === 'VP8L') {
      const b = buf.readUInt32LE(21);
      return { format: 'webp', width: (b & 0x3fff) + 1, height: ((b >> 14) & 0x3fff) + 1 };
    }
    if (kind === 'VP8 ') return { format: 'webp', width: buf.readUInt16LE(26) & 0x3fff, height: buf.readUInt16LE(28) & 0x3fff };
    return { format: 'webp', width: null, height: null };
  }
  return { format: 'unknown' };
}

/** Sum of all quantisation-table entries of a JPEG (bigger = lower quality). */
function jpegQuantSum(buf) {
  let i = 2;
  let sum = 0;
  while (i + 4 < buf.length && buf[i] === 0xff) {
    const m = buf[i + 1];
    if (m === 0xda || m === 0xd9) break;
    const len = buf.readUInt16BE(i + 2);
    if (m === 0xdb) {
      let j = i + 4;
      while (j < i + 2 + len) {
        const pq = buf[j] >> 4;
        j++;
        for (let k = 0; k < 64; k++) {
          sum += pq ? buf.readUInt16BE(j + 2 * k) : buf[j + k];
        }
        j += pq ? 128 : 64;
      }
    }
    i += 2 + len;
  }
  return sum;
}

const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
const tusMeta = (m) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');

// ---------------------------------------------------------------------------------------------
// the suite

/**
 * Define the storage describe blocks for one backend.
 * @param {string} name shown in the describe titles
 * @param {() => (object|Promise<object>)} makeEnv extra server env, called once per server
 * @param {{backend?: 'fs'|'s3', storedKeys?: (srv, env) => Promise<string[]>, transforms?: boolean}} [opts]
 */
export function storageSuite(name, makeEnv, { backend = 'fs', storedKeys = fsStoredKeys, transforms = true } = {}) {
  // =============================================================================== main server
  describe(`storage [${name}]: service role`, () => {
    let srv;
    let env;
    let st; // service storage client

    before(async () => {
      env = { ...(await makeEnv()) };
      srv = await startServer({ env: { ...env, OUTPOST_STORAGE_MAX_FILE_SIZE: String(MAX_FILE_SIZE) } });
      st = srv.client('service').storage;
      const mk = async (id, opts) => sOk(await st.createBucket(id, opts), `createBucket ${id}`);
      await mk('files', { public: false });
      await mk('files2', { public: false });
      await mk('pub', { public: true });
      await mk('tree', { public: false });
      await mk('limited', { public: false, fileSizeLimit: 1024 });
      await mk('limited-str', { public: false, fileSizeLimit: '1KB' });
      await mk('pngonly', { public: false, allowedMimeTypes: ['image/png'] });
      await mk('imagesany', { public: false, allowedMimeTypes: ['image/*'] });
    });
    after(async () => {
      await srv?.stop();
    });

    // ------------------------------------------------------------------------------ buckets
    describe('buckets', () => {
      test('createBucket returns {name}; getBucket shows every field', async () => {
        const id = uniq('bkt');
        const data = sOk(
          await st.createBucket(id, { public: false, fileSizeLimit: 2048, allowedMimeTypes: ['image/png', 'text/plain'] }),
        );
        assert.deepEqual(data, { name: id });
        const b = sOk(await st.getBucket(id));
        assert.equal(b.id, id);
        assert.equal(b.name, id);
        assert.equal(b.public, false);
        assert.equal(b.file_size_limit, 2048);
        assert.deepEqual(b.allowed_mime_types, ['image/png', 'text/plain']);
        assert.equal(typeof b.created_at, 'string', JSON.stringify(b));
        assert.ok(!Number.isNaN(Date.parse(b.created_at)), `created_at must be a date: ${b.created_at}`);
        assert.ok(Math.abs(Date.parse(b.created_at) - Date.now()) < 10 * 60_000, `created_at not recent: ${b.created_at}`);
        assert.equal(typeof b.updated_at, 'string', JSON.stringify(b));
      });

      test('bucket defaults: private, no size limit, any MIME type', async () => {
        const id = uniq('plain');
        sOk(await st.createBucket(id));
        const b = sOk(await st.getBucket(id));
        assert.equal(b.public, false);
        assert.equal(b.file_size_limit, null);
        assert.equal(b.allowed_mime_types, null);
      });

      test("a string fileSizeLimit ('1KB') is stored as bytes", async () => {
        const b = sOk(await st.getBucket('limited-str'));
        assert.equal(b.file_size_limit, 1024, JSON.stringify(b));
      });

      test('listBuckets lists the buckets with their fields', async () => {
        const list = sOk(await st.listBuckets());
        assert.ok(Array.isArray(list), JSON.stringify(list));
        const byId = Object.fromEntries(list.map((b) => [b.id, b]));
        for (const id of ['files', 'pub', 'limited', 'pngonly']) assert.ok(byId[id], `listBuckets lacks ${id}: ${JSON.stringify(list)}`);
        assert.equal(byId.pub.public, true);
        assert.equal(byId.files.public, false);
        assert.equal(byId.limited.file_size_limit, 1024);
        assert.deepEqual(byId.pngonly.allowed_mime_types, ['image/png']);
        assert.equal(byId.files.name, 'files');
        assert.equal(typeof byId.files.created_at, 'string');
      });

      test('updateBucket changes public, size limit and MIME types', async () => {
        const id = uniq('upd');
        sOk(await st.createBucket(id, { public: false }));
        const data = sOk(
          await st.updateBucket(id, { public: true, fileSizeLimit: 5000, allowedMimeTypes: ['text/plain'] }),
        );
        assert.equal(typeof data.message, 'string', JSON.stringify(data));
        const b = sOk(await st.getBucket(id));
        assert.equal(b.public, true);
        assert.equal(b.file_size_limit, 5000);
        assert.deepEqual(b.allowed_mime_types, ['text/plain']);
        // the new rules apply to uploads
        sFails(await st.from(id).upload('x.png', makePng(4, 4), { contentType: 'image/png' }), [415, 400], 'png into text/plain bucket');
        sOk(await st.from(id).upload('x.txt', 'hello', { contentType: 'text/plain' }));
        sFails(await st.from(id).upload('big.txt', 'x'.repeat(6000), { contentType: 'text/plain' }), 413, 'over the new limit');
        // and back to private: the public URL stops working
        sOk(await st.updateBucket(id, { public: false }));
        assert.equal(sOk(await st.getBucket(id)).public, false);
        const r = await fetch(st.from(id).getPublicUrl('x.txt').data.publicUrl);
        const body = await r.text();
        assert.ok([400, 404].includes(r.status), `public URL of a now-private bucket: ${r.status} ${body}`);
        assert.ok(!body.includes('hello'), 'private object bytes leaked');
      });

      test('updateBucket changes only the fields it is given; null clears a limit', async () => {
        const id = uniq('partial');
        sOk(await st.createBucket(id, { public: false, fileSizeLimit: 4096, allowedMimeTypes: ['image/png'] }));
        sOk(await st.updateBucket(id, { public: true }));
        let b = sOk(await st.getBucket(id));
        assert.equal(b.public, true);
        assert.equal(b.file_size_limit, 4096, `an update without fileSizeLimit keeps it: ${JSON.stringify(b)}`);
        assert.deepEqual(b.allowed_mime_types, ['image/png'], `an update without allowedMimeTypes keeps them: ${JSON.stringify(b)}`);
        sOk(await st.updateBucket(id, { public: true, fileSizeLimit: null, allowedMimeTypes: null }));
        b = sOk(await st.getBucket(id));
        assert.equal(b.file_size_limit, null, JSON.stringify(b));
        assert.equal(b.allowed_mime_types, null, JSON.stringify(b));
        sOk(await st.from(id).upload('big.txt', 'x'.repeat(8000), { contentType: 'text/plain' }), 'no limits any more');
      });

      test('creating a bucket twice is a 409 Duplicate', async () => {
        const id = uniq('dup');
        sOk(await st.createBucket(id));
        sFails(await st.createBucket(id), 409, 'duplicate bucket');
        sFails(await st.createBucket(id, { public: true }), 409, 'duplicate bucket (public)');
        assert.equal(sOk(await st.getBucket(id)).public, false, 'the failed create must not change the bucket');
      });

      test('getBucket / updateBucket / deleteBucket / emptyBucket of a missing bucket: 404', async () => {
        sFails(await st.getBucket('no-such-bucket'), 404, 'getBucket missing', { code: ['NoSuchBucket', undefined] });
        sFails(await st.updateBucket('no-such-bucket', { public: true }), 404, 'updateBucket missing');
        sFails(await st.deleteBucket('no-such-bucket'), 404, 'deleteBucket missing');
        sFails(await st.emptyBucket('no-such-bucket'), 404, 'emptyBucket missing');
      });

      test('listBuckets options: search, sortColumn/sortOrder, limit, offset', async () => {
        const tag = uniq('lb');
        for (const x of ['c', 'a', 'b']) sOk(await st.createBucket(`${tag}-${x}`));
        const found = sOk(await st.listBuckets({ search: tag, sortColumn: 'name', sortOrder: 'asc' }));
        assert.deepEqual(found.map((b) => b.name), [`${tag}-a`, `${tag}-b`, `${tag}-c`]);
        const desc = sOk(await st.listBuckets({ search: tag, sortColumn: 'name', sortOrder: 'desc' }));
        assert.deepEqual(desc.map((b) => b.name), [`${tag}-c`, `${tag}-b`, `${tag}-a`]);
        const page = sOk(await st.listBuckets({ search: tag, sortColumn: 'name', sortOrder: 'asc', limit: 1, offset: 1 }));
        assert.deepEqual(page.map((b) => b.name), [`${tag}-b`]);
        assert.deepEqual(sOk(await st.listBuckets({ search: `${tag}-zzz` })), []);
      });

      test('an invalid bucket name is refused with 400', async () => {
        sFails(await st.createBucket('bad/name'), 400, 'slash in bucket name');
        sFails(await st.createBucket(''), 400, 'empty bucket name');
        const list = sOk(await st.listBuckets());
        assert.ok(!list.some((b) => b.id === 'bad/name' || b.id === ''), JSON.stringify(list));
      });

      test('deleteBucket is refused while the bucket has objects; emptyBucket then deleteBucket works', async () => {
        const id = uniq('del');
        sOk(await st.createBucket(id));
        sOk(await st.from(id).upload('a.txt', 'a'));
        sOk(await st.from(id).upload('dir/b.txt', 'b'));
        sFails(await st.deleteBucket(id), [409, 400], 'delete non-empty bucket');
        assert.equal(sOk(await st.getBucket(id)).id, id, 'refused delete must keep the bucket');
        assert.equal((await blobBytes(sOk(await st.from(id).download('a.txt')))).toString(), 'a');

        const emptied = sOk(await st.emptyBucket(id));
        assert.equal(typeof emptied.message, 'string', JSON.stringify(emptied));
        assert.deepEqual(sOk(await st.from(id).list()), [], 'emptyBucket must remove every object');
        assert.deepEqual(sOk(await st.from(id).list('dir')), []);
        sFails(await st.from(id).download('dir/b.txt'), 404, 'object after emptyBucket');

        const deleted = sOk(await st.deleteBucket(id));
        assert.equal(typeof deleted.message, 'string', JSON.stringify(deleted));
        sFails(await st.getBucket(id), 404, 'bucket after delete');
        assert.ok(!sOk(await st.listBuckets()).some((b) => b.id === id), 'deleted bucket still listed');
        // the name is free again
        sOk(await st.createBucket(id));
        assert.deepEqual(sOk(await st.from(id).list()), [], 'a re-created bucket starts empty');
      });
    });

    // ------------------------------------------------------------------------------ objects
    describe('objects', () => {
      test('upload a string, download the same bytes; the result names the object', async () => {
        const p = `${uniq('hello')}.txt`;
        const data = sOk(await st.from('files').upload(p, 'hello world', { contentType: 'text/plain' }));
        assert.equal(data.path, p);
        assert.equal(data.fullPath, `files/${p}`);
        assert.equal(typeof data.id, 'string', `upload must return Id: ${JSON.stringify(data)}`);
        assert.ok(data.id.length > 0);
        const blob = sOk(await st.from('files').download(p));
        assert.equal(await blob.text(), 'hello world');
        assert.match(blob.type, /^text\/plain/);
      });

      test('upload a Buffer of binary bytes (all 256 values) and get them back unchanged', async () => {
        const p = `bin/${uniq('b')}.bin`;
        const bytes = Buffer.concat([Buffer.from([...Array(256).keys()]), randomBytes(5000)]);
        sOk(await st.from('files').upload(p, bytes, { contentType: 'application/octet-stream' }));
        const got = await blobBytes(sOk(await st.from('files').download(p)));
        assert.equal(got.length, bytes.length);
        assert.ok(got.equals(bytes), 'downloaded bytes differ');
        const info = sOk(await st.from('files').info(p));
        assert.equal(info.size, bytes.length);
        assert.equal(info.contentType, 'application/octet-stream');
      });

      test('upload a Blob (multipart): the part type is the content type, cacheControl and metadata fields apply', async () => {
        const p = `${uniq('blob')}.json`;
        const body = JSON.stringify({ a: 1, b: [1, 2, 3] });
        sOk(
          await st.from('files').upload(p, new Blob([body], { type: 'application/json' }), {
            cacheControl: '77',
            metadata: { source: 'blob', n: 3 },
          }),
        );
        const blob = sOk(await st.from('files').download(p));
        assert.equal(await blob.text(), body);
        const info = sOk(await st.from('files').info(p));
        assert.equal(info.contentType, 'application/json');
        assert.equal(info.size, Buffer.byteLength(body));
        assert.deepEqual(info.metadata, { source: 'blob', n: 3 });
        const r = await sfetch(srv, `/object/files/${p}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('cache-control'), 'max-age=77');
      });

      test('upsert false: uploading the same path again is 409 Duplicate and keeps the first bytes', async () => {
        const p = `${uniq('dup')}.txt`;
        sOk(await st.from('files').upload(p, 'first'));
        const e = sFails(await st.from('files').upload(p, 'second'), 409, 'second upload without upsert');
        assert.match(`${e.message} ${e.code ?? ''}`, /exist|duplicate/i, `message should say it exists: ${e.message}`);
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'first');
      });

      test('upsert true replaces the object (bytes, size, content type)', async () => {
        const p = `${uniq('ups')}.txt`;
        sOk(await st.from('files').upload(p, 'short', { contentType: 'text/plain' }));
        const before = sOk(await st.from('files').info(p));
        sOk(await st.from('files').upload(p, '{"much":"longer content"}', { upsert: true, contentType: 'application/json' }));
        assert.equal(await sOk(await st.from('files').download(p)).text(), '{"much":"longer content"}');
        const info = sOk(await st.from('files').info(p));
        assert.equal(info.size, 25);
        assert.equal(info.contentType, 'application/json');
        assert.notEqual(info.etag, before.etag, 'new bytes must get a new etag');
        // still a single object under that name
        const dir = sOk(await st.from('files').list('', { search: p }));
        assert.equal(dir.filter((o) => o.name === p).length, 1, JSON.stringify(dir));
      });

      test('update (PUT) replaces an existing object', async () => {
        const p = `${uniq('put')}.txt`;
        sOk(await st.from('files').upload(p, 'v1'));
        const data = sOk(await st.from('files').update(p, 'version two', { contentType: 'text/markdown' }));
        assert.equal(data.path, p);
        assert.equal(data.fullPath, `files/${p}`);
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'version two');
        assert.equal(sOk(await st.from('files').info(p)).contentType, 'text/markdown');
      });

      test('download / info of a missing object: 404 NoSuchKey-style; exists() true/false', async () => {
        sFails(await st.from('files').download('nope/missing.txt'), 404, 'download missing');
        sFails(await st.from('files').info('nope/missing.txt'), 404, 'info missing', { code: ['NoSuchKey', undefined] });
        const ex = await st.from('files').exists('nope/missing.txt');
        assert.equal(ex.data, false, showRes(ex));
        const p = `${uniq('ex')}.txt`;
        sOk(await st.from('files').upload(p, 'x'));
        const ex2 = await st.from('files').exists(p);
        assert.equal(ex2.data, true, showRes(ex2));
        assert.equal(ex2.error, null);
      });

      test('upload / download in a missing bucket: 404', async () => {
        sFails(await st.from('no-such-bucket').upload('a.txt', 'x'), 404, 'upload into missing bucket');
        sFails(await st.from('no-such-bucket').download('a.txt'), [404], 'download from missing bucket');
      });

      test('requests without any key are refused', async () => {
        const p = `${uniq('nokey')}.txt`;
        sOk(await st.from('files').upload(p, 'secret'));
        const r = await sfetch(srv, `/object/files/${p}`, { auth: false });
        assert.ok([400, 401, 403].includes(r.status), `no key: ${showHttp(r)}`);
        assert.ok(!r.text.includes('secret'), 'bytes leaked without a key');
        const up = await sfetch(srv, `/object/files/${uniq('nokey')}.txt`, {
          method: 'POST',
          auth: false,
          headers: { 'Content-Type': 'text/plain' },
          body: 'x',
        });
        assert.ok([400, 401, 403].includes(up.status), `upload with no key: ${showHttp(up)}`);
        const bad = await sfetch(srv, `/object/files/${p}`, { key: srv.anonKey, token: 'not.a.jwt' });
        assert.ok([400, 401, 403].includes(bad.status), `garbage bearer: ${showHttp(bad)}`);
        assert.ok(!bad.text.includes('secret'));
      });

      test('download headers: Content-Type, Content-Length, ETag, Last-Modified, Cache-Control from cacheControl', async () => {
        const p = `${uniq('hdr')}.txt`;
        const body = 'header check body';
        sOk(await st.from('files').upload(p, body, { contentType: 'text/csv', cacheControl: '120' }));
        const r = await sfetch(srv, `/object/files/${p}`);
        assert.equal(r.status, 200, showHttp(r));
        assert.equal(r.text, body);
        assert.match(r.headers.get('content-type') ?? '', /^text\/csv/);
        assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(body)));
        assert.equal(r.headers.get('cache-control'), 'max-age=120');
        const etag = r.headers.get('etag');
        assert.ok(etag && etag.length > 2, `ETag missing: ${etag}`);
        const lm = r.headers.get('last-modified');
        assert.ok(lm, 'Last-Modified missing');
        assert.ok(!Number.isNaN(Date.parse(lm)), `Last-Modified not a date: ${lm}`);
        assert.ok(Math.abs(Date.parse(lm) - Date.now()) < 10 * 60_000, `Last-Modified not recent: ${lm}`);
        const info = sOk(await st.from('files').info(p));
        assert.equal(String(info.etag).replace(/^W\//, '').replace(/"/g, ''), etag.replace(/^W\//, '').replace(/"/g, ''), 'info etag = ETag header');
        // the default cacheControl is 3600
        const p2 = `${uniq('hdr')}.txt`;
        sOk(await st.from('files').upload(p2, 'x'));
        const r2 = await sfetch(srv, `/object/files/${p2}`);
        assert.equal(r2.headers.get('cache-control'), 'max-age=3600');
      });

      test('If-None-Match with the ETag answers 304 without a body; a different ETag gets 200', async () => {
        const p = `${uniq('etag')}.txt`;
        sOk(await st.from('files').upload(p, 'cache me'));
        const r = await sfetch(srv, `/object/files/${p}`);
        const etag = r.headers.get('etag');
        assert.ok(etag, 'ETag missing');
        const r304 = await sfetch(srv, `/object/files/${p}`, { headers: { 'If-None-Match': etag } });
        assert.equal(r304.status, 304, showHttp(r304));
        assert.equal(r304.buf.length, 0);
        const r200 = await sfetch(srv, `/object/files/${p}`, { headers: { 'If-None-Match': '"something-else"' } });
        assert.equal(r200.status, 200);
        assert.equal(r200.text, 'cache me');
        // after an upsert the old ETag no longer matches
        sOk(await st.from('files').upload(p, 'changed', { upsert: true }));
        const after = await sfetch(srv, `/object/files/${p}`, { headers: { 'If-None-Match': etag } });
        assert.equal(after.status, 200, `stale ETag must not 304: ${showHttp(after)}`);
        assert.equal(after.text, 'changed');
      });

      test('Range requests: 206 with Content-Range, exact slices', async () => {
        const p = `${uniq('range')}.bin`;
        const bytes = randomBytes(1000);
        sOk(await st.from('files').upload(p, bytes, { contentType: 'application/octet-stream' }));
        const r = await sfetch(srv, `/object/files/${p}`, { headers: { Range: 'bytes=0-9' } });
        assert.equal(r.status, 206, showHttp(r));
        assert.equal(r.headers.get('content-range'), 'bytes 0-9/1000');
        assert.equal(r.buf.length, 10);
        assert.ok(r.buf.equals(bytes.subarray(0, 10)));
        const mid = await sfetch(srv, `/object/files/${p}`, { headers: { Range: 'bytes=500-599' } });
        assert.equal(mid.status, 206);
        assert.equal(mid.headers.get('content-range'), 'bytes 500-599/1000');
        assert.ok(mid.buf.equals(bytes.subarray(500, 600)));
        const open = await sfetch(srv, `/object/files/${p}`, { headers: { Range: 'bytes=990-' } });
        assert.equal(open.status, 206);
        assert.equal(open.headers.get('content-range'), 'bytes 990-999/1000');
        assert.ok(open.buf.equals(bytes.subarray(990)));
        const suffix = await sfetch(srv, `/object/files/${p}`, { headers: { Range: 'bytes=-5' } });
        assert.equal(suffix.status, 206);
        assert.ok(suffix.buf.equals(bytes.subarray(995)), 'suffix range');
        const full = await sfetch(srv, `/object/files/${p}`);
        assert.equal(full.status, 200);
        assert.ok(full.buf.equals(bytes));
      });

      test('the cacheNonce query parameter storage-js can add is accepted everywhere', async () => {
        const p = `${uniq('nonce')}.txt`;
        sOk(await st.from('files').upload(p, 'nonce'));
        assert.equal(await sOk(await st.from('files').download(p, { cacheNonce: 'n1' })).text(), 'nonce');
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 60, { cacheNonce: 'n2' }));
        assert.ok(signedUrl.includes('cacheNonce=n2'), signedUrl);
        assert.equal(await (await fetch(signedUrl)).text(), 'nonce');
        const pp = `${uniq('nonce')}.txt`;
        sOk(await st.from('pub').upload(pp, 'public nonce'));
        const { publicUrl } = st.from('pub').getPublicUrl(pp, { cacheNonce: 'n3' }).data;
        assert.ok(publicUrl.includes('cacheNonce=n3'), publicUrl);
        assert.equal(await (await fetch(publicUrl)).text(), 'public nonce');
      });

      test('HEAD on an object: 200 with Content-Length and ETag, no body; 404 when missing', async () => {
        const p = `${uniq('head')}.txt`;
        sOk(await st.from('files').upload(p, 'twelve bytes', { contentType: 'text/plain' }));
        const r = await sfetch(srv, `/object/files/${p}`, { method: 'HEAD' });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-length'), '12');
        assert.ok(r.headers.get('etag'), 'ETag on HEAD');
        assert.equal(r.buf.length, 0);
        const m = await sfetch(srv, '/object/files/missing/head.txt', { method: 'HEAD' });
        assert.ok([400, 404].includes(m.status), `HEAD missing: ${m.status}`);
      });

      test('remove() of a folder name removes nothing (it is not recursive)', async () => {
        const dir = uniq('keepdir');
        sOk(await st.from('files').upload(`${dir}/a.txt`, 'a'));
        sOk(await st.from('files').upload(`${dir}/b.txt`, 'b'));
        assert.deepEqual(sOk(await st.from('files').remove([dir])), []);
        assert.deepEqual(sOk(await st.from('files').remove([`${dir}/`])), []);
        assert.deepEqual(sOk(await st.from('files').list(dir)).map((o) => o.name), ['a.txt', 'b.txt']);
        sFails(await st.from('files').info(dir), 404, 'info of a folder');
      });

      test('names with spaces and unicode work with signed URLs, signed uploads and public URLs', async () => {
        const p = `${uniq('sp')}/my file ü (2).txt`;
        sOk(await st.from('files').upload(p, 'spaced'));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 60));
        const r = await fetch(signedUrl);
        assert.equal(r.status, 200, signedUrl);
        assert.equal(await r.text(), 'spaced');
        const many = sOk(await st.from('files').createSignedUrls([p], 60));
        assert.equal(many[0].error, null, JSON.stringify(many));
        assert.equal(await (await fetch(many[0].signedUrl)).text(), 'spaced');
        const up = `${uniq('sp')}/upload ü.txt`;
        const su = sOk(await st.from('files').createSignedUploadUrl(up));
        sOk(await srv.client('anon').storage.from('files').uploadToSignedUrl(up, su.token, 'signed spaced'));
        assert.equal(await sOk(await st.from('files').download(up)).text(), 'signed spaced');
        const pp = `${uniq('sp')}/public ü.txt`;
        sOk(await st.from('pub').upload(pp, 'public spaced'));
        const pr = await fetch(st.from('pub').getPublicUrl(pp).data.publicUrl);
        assert.equal(pr.status, 200);
        assert.equal(await pr.text(), 'public spaced');
      });

      test('an empty object (the dashboard\'s .emptyFolderPlaceholder) can be uploaded and makes a folder', async () => {
        const dir = uniq('emptydir');
        sOk(await st.from('files').upload(`${dir}/.emptyFolderPlaceholder`, ''));
        const info = sOk(await st.from('files').info(`${dir}/.emptyFolderPlaceholder`));
        assert.equal(info.size, 0);
        assert.equal((await blobBytes(sOk(await st.from('files').download(`${dir}/.emptyFolderPlaceholder`)))).length, 0);
        const root = sOk(await st.from('files').list('', { search: dir }));
        assert.deepEqual(root.map((o) => [o.name, o.id]), [[dir, null]], JSON.stringify(root));
        assert.deepEqual(sOk(await st.from('files').list(dir)).map((o) => o.name), ['.emptyFolderPlaceholder']);
        const r = await sfetch(srv, `/object/files/${dir}/.emptyFolderPlaceholder`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-length'), '0');
      });

      test('object names are case-sensitive', async () => {
        const dir = uniq('case');
        sOk(await st.from('files').upload(`${dir}/Readme.txt`, 'upper'));
        sOk(await st.from('files').upload(`${dir}/readme.txt`, 'lower'));
        assert.equal(await sOk(await st.from('files').download(`${dir}/Readme.txt`)).text(), 'upper');
        assert.equal(await sOk(await st.from('files').download(`${dir}/readme.txt`)).text(), 'lower');
        assert.deepEqual(sOk(await st.from('files').list(dir)).map((o) => o.name).sort(), ['Readme.txt', 'readme.txt']);
        sFails(await st.from('files').download(`${dir}/README.txt`), 404, 'a third casing does not exist');
      });

      test('Range past the end is 416 (or 400 invalid range)', async () => {
        const p = `${uniq('r416')}.txt`;
        sOk(await st.from('files').upload(p, '0123456789'));
        const r = await sfetch(srv, `/object/files/${p}`, { headers: { Range: 'bytes=100-200' } });
        assert.ok([416, 400].includes(r.status), `unsatisfiable range: ${showHttp(r)}`);
        assert.ok(!r.text.includes('0123456789'), 'an unsatisfiable range must not send the body');
        if (r.status === 416) assert.equal(r.headers.get('content-range'), 'bytes */10');
      });

      test('If-Modified-Since at or after Last-Modified answers 304; an older date gets the object', async () => {
        const p = `${uniq('ims')}.txt`;
        sOk(await st.from('files').upload(p, '0123456789'));
        const full = await sfetch(srv, `/object/files/${p}`);
        const lm = full.headers.get('last-modified');
        const r304 = await sfetch(srv, `/object/files/${p}`, { headers: { 'If-Modified-Since': lm } });
        assert.equal(r304.status, 304, `If-Modified-Since = Last-Modified: ${showHttp(r304)}`);
        const old = await sfetch(srv, `/object/files/${p}`, { headers: { 'If-Modified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' } });
        assert.equal(old.status, 200);
        assert.equal(old.text, '0123456789');
      });

      test('remove() and emptyBucket() handle more than 100 objects', async () => {
        const id = uniq('bulk');
        sOk(await st.createBucket(id));
        const names = [];
        for (let i = 0; i < 130; i++) names.push(`d${i % 3}/f${String(i).padStart(3, '0')}.txt`);
        await Promise.all(names.map((n) => st.from(id).upload(n, n).then((r) => sOk(r, n))));
        const removed = sOk(await st.from(id).remove(names.slice(0, 110)));
        assert.equal(removed.length, 110, `remove of 110 paths removed ${removed.length}`);
        const left = sOk(await st.from(id).listV2({ limit: 1000 }));
        assert.deepEqual(left.objects.map((o) => o.key ?? o.name).sort(), names.slice(110).sort());
        for (let i = 0; i < 100; i++) sOk(await st.from(id).upload(`more/m${i}.txt`, 'm'));
        sOk(await st.emptyBucket(id));
        const after = sOk(await st.from(id).listV2({ limit: 1000 }));
        assert.deepEqual(after.objects, [], `emptyBucket left ${after.objects.length} objects`);
        sOk(await st.deleteBucket(id));
      });

      test('unicode and spaces in names round-trip through upload, list, download, info', async () => {
        const dir = uniq('uni');
        const p = `${dir}/hello wörld (1) ü.txt`;
        sOk(await st.from('files').upload(p, 'unicode'));
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'unicode');
        const names = sOk(await st.from('files').list(dir)).map((o) => o.name);
        assert.deepEqual(names, ['hello wörld (1) ü.txt']);
        assert.equal(sOk(await st.from('files').info(p)).name, p);
      });

      test('info(): id, name, bucketId, size, contentType, cacheControl, etag, dates, user metadata', async () => {
        const p = `info/${uniq('i')}.txt`;
        const meta = { owner: 'ada', tags: ['x', 'y'], nested: { n: 1, ok: true } };
        sOk(await st.from('files').upload(p, 'info body', { contentType: 'text/plain', cacheControl: '60', metadata: meta }));
        const info = sOk(await st.from('files').info(p));
        assert.equal(typeof info.id, 'string');
        assert.equal(info.name, p);
        assert.equal(info.bucketId, 'files');
        assert.equal(info.size, 9);
        assert.equal(info.contentType, 'text/plain');
        assert.equal(info.cacheControl, 'max-age=60');
        assert.equal(typeof info.etag, 'string');
        assert.ok(info.etag.length > 0);
        assert.ok(!Number.isNaN(Date.parse(info.lastModified)), `lastModified: ${JSON.stringify(info)}`);
        assert.ok(!Number.isNaN(Date.parse(info.createdAt)), `createdAt: ${JSON.stringify(info)}`);
        assert.deepEqual(info.metadata, meta);
      });

      test('invalid x-metadata (not base64 JSON) is refused with 400 and nothing is stored', async () => {
        for (const bad of ['%%%not-base64%%%', Buffer.from('not json').toString('base64')]) {
          const p = `${uniq('badmeta')}.txt`;
          const r = await sfetch(srv, `/object/files/${p}`, {
            method: 'POST',
            headers: { 'Content-Type': 'text/plain', 'x-metadata': bad },
            body: 'meta',
          });
          assertHttpError(r, 400, `x-metadata ${bad}`);
          assert.equal((await st.from('files').exists(p)).data, false, `stored despite bad metadata ${bad}`);
        }
      });

      test('metadata round-trips and is replaced by an upsert', async () => {
        const p = `${uniq('meta')}.txt`;
        sOk(await st.from('files').upload(p, 'm', { metadata: { v: 1 } }));
        assert.deepEqual(sOk(await st.from('files').info(p)).metadata, { v: 1 });
        sOk(await st.from('files').upload(p, 'm2', { upsert: true, metadata: { v: 2, extra: 'yes' } }));
        assert.deepEqual(sOk(await st.from('files').info(p)).metadata, { v: 2, extra: 'yes' });
      });

      test('remove() returns the removed objects; they are gone afterwards; missing paths are skipped', async () => {
        const a = `rm/${uniq('a')}.txt`;
        const b = `rm/${uniq('b')}.txt`;
        const keep = `rm/${uniq('keep')}.txt`;
        for (const p of [a, b, keep]) sOk(await st.from('files').upload(p, p));
        const removed = sOk(await st.from('files').remove([a, b, 'rm/not-there.txt']));
        assert.ok(Array.isArray(removed), JSON.stringify(removed));
        assert.deepEqual(removed.map((o) => o.name).sort(), [a, b].sort());
        for (const o of removed) assert.equal(o.bucket_id, 'files', JSON.stringify(o));
        sFails(await st.from('files').download(a), 404, 'download removed a');
        sFails(await st.from('files').download(b), 404, 'download removed b');
        assert.equal((await st.from('files').exists(a)).data, false);
        assert.equal(await sOk(await st.from('files').download(keep)).text(), keep);
        assert.deepEqual(sOk(await st.from('files').remove(['rm/not-there.txt'])), []);
      });

      test('move within a bucket: old path gone, new path has the bytes, type and metadata', async () => {
        const src = `mv/${uniq('src')}.txt`;
        const dst = `mv/moved/${uniq('dst')}.txt`;
        sOk(await st.from('files').upload(src, 'move me', { contentType: 'text/markdown', metadata: { k: 'v' } }));
        const data = sOk(await st.from('files').move(src, dst));
        assert.equal(typeof data.message, 'string', JSON.stringify(data));
        sFails(await st.from('files').download(src), 404, 'source after move');
        assert.equal(await sOk(await st.from('files').download(dst)).text(), 'move me');
        const info = sOk(await st.from('files').info(dst));
        assert.equal(info.contentType, 'text/markdown');
        assert.deepEqual(info.metadata, { k: 'v' });
      });

      test('move across buckets', async () => {
        const src = `${uniq('x')}.txt`;
        const dst = `from-files/${uniq('y')}.txt`;
        sOk(await st.from('files').upload(src, 'cross'));
        sOk(await st.from('files').move(src, dst, { destinationBucket: 'files2' }));
        sFails(await st.from('files').download(src), 404, 'source after cross-bucket move');
        assert.equal(await sOk(await st.from('files2').download(dst)).text(), 'cross');
        sFails(await st.from('files').download(dst), 404, 'destination is in files2, not files');
      });

      test('move onto an existing object fails and changes nothing; moving a missing object is 404', async () => {
        const a = `${uniq('a')}.txt`;
        const b = `${uniq('b')}.txt`;
        sOk(await st.from('files').upload(a, 'AAA'));
        sOk(await st.from('files').upload(b, 'BBB'));
        sFails(await st.from('files').move(a, b), [409, 400], 'move onto existing');
        assert.equal(await sOk(await st.from('files').download(a)).text(), 'AAA');
        assert.equal(await sOk(await st.from('files').download(b)).text(), 'BBB');
        sFails(await st.from('files').move('missing/src.txt', `${uniq('c')}.txt`), 404, 'move missing');
        sFails(await st.from('files').move(a, `${uniq('c')}.txt`, { destinationBucket: 'no-such-bucket' }), 404, 'move to missing bucket');
        assert.equal(await sOk(await st.from('files').download(a)).text(), 'AAA', 'failed move must keep the source');
      });

      test('copy within and across buckets: both copies have the bytes; the copy is independent', async () => {
        const src = `cp/${uniq('src')}.txt`;
        sOk(await st.from('files').upload(src, 'copy me', { contentType: 'text/x-test', metadata: { c: 1 } }));
        const dst = `cp/${uniq('dst')}.txt`;
        const data = sOk(await st.from('files').copy(src, dst));
        assert.equal(data.path, `files/${dst}`);
        assert.equal(await sOk(await st.from('files').download(src)).text(), 'copy me');
        assert.equal(await sOk(await st.from('files').download(dst)).text(), 'copy me');
        const info = sOk(await st.from('files').info(dst));
        assert.equal(info.contentType, 'text/x-test');
        assert.deepEqual(info.metadata, { c: 1 });
        // changing the copy leaves the source alone
        sOk(await st.from('files').update(dst, 'changed copy'));
        assert.equal(await sOk(await st.from('files').download(src)).text(), 'copy me');
        // removing the source leaves the copy alone
        sOk(await st.from('files').remove([src]));
        assert.equal(await sOk(await st.from('files').download(dst)).text(), 'changed copy');

        const src2 = `${uniq('s2')}.txt`;
        sOk(await st.from('files').upload(src2, 'across'));
        const d2 = sOk(await st.from('files').copy(src2, 'copied/x.txt', { destinationBucket: 'files2' }));
        assert.equal(d2.path, 'files2/copied/x.txt');
        assert.equal(await sOk(await st.from('files2').download('copied/x.txt')).text(), 'across');
        assert.equal(await sOk(await st.from('files').download(src2)).text(), 'across');
        sFails(await st.from('files').copy('missing.txt', 'whatever.txt'), 404, 'copy missing');
      });

      test('copy onto an existing object without upsert fails and keeps the destination', async () => {
        const a = `${uniq('ca')}.txt`;
        const b = `${uniq('cb')}.txt`;
        sOk(await st.from('files').upload(a, 'AAA'));
        sOk(await st.from('files').upload(b, 'BBB'));
        sFails(await st.from('files').copy(a, b), [409, 400], 'copy onto existing');
        assert.equal(await sOk(await st.from('files').download(b)).text(), 'BBB');
      });
    });

    // ------------------------------------------------------------------------------ listing
    describe('list and listV2', () => {
      const files = ['a.txt', 'b.txt', 'c.txt', 'docs/d1.txt', 'docs/d2.txt', 'docs/sub/s.txt', 'img/i.png'];
      before(async () => {
        for (const f of files) {
          const type = f.endsWith('.png') ? 'image/png' : 'text/plain';
          sOk(await st.from('tree').upload(f, f.endsWith('.png') ? makePng(2, 2) : `content of ${f}`, { contentType: type }));
        }
      });

      // Supabase's storage.search lists the folders first (sorted), then the files (sorted).
      test('list() at the root: folders first (id null, no metadata), then files, each sorted by name', async () => {
        const list = sOk(await st.from('tree').list());
        assert.deepEqual(list.map((o) => o.name), ['docs', 'img', 'a.txt', 'b.txt', 'c.txt']);
        const byName = Object.fromEntries(list.map((o) => [o.name, o]));
        for (const f of ['docs', 'img']) {
          assert.equal(byName[f].id, null, `folder ${f} must have id null: ${JSON.stringify(byName[f])}`);
          assert.equal(byName[f].metadata ?? null, null, `folder ${f} has no metadata: ${JSON.stringify(byName[f])}`);
        }
        const a = byName['a.txt'];
        assert.equal(typeof a.id, 'string', JSON.stringify(a));
        assert.ok(a.id.length > 0);
        assert.equal(a.metadata.size, Buffer.byteLength('content of a.txt'), JSON.stringify(a));
        assert.equal(a.metadata.mimetype, 'text/plain');
        assert.equal(typeof a.metadata.eTag, 'string');
        assert.equal(a.metadata.cacheControl, 'max-age=3600');
        assert.equal(a.metadata.contentLength, a.metadata.size);
        assert.equal(a.metadata.httpStatusCode, 200);
        assert.ok(!Number.isNaN(Date.parse(a.metadata.lastModified)), `metadata.lastModified: ${JSON.stringify(a.metadata)}`);
        for (const k of ['created_at', 'updated_at', 'last_accessed_at']) {
          assert.ok(!Number.isNaN(Date.parse(a[k])), `${k} of a file: ${JSON.stringify(a)}`);
        }
      });

      test('list(prefix) shows one level below the prefix', async () => {
        assert.deepEqual(sOk(await st.from('tree').list('docs')).map((o) => o.name), ['sub', 'd1.txt', 'd2.txt']);
        assert.deepEqual(sOk(await st.from('tree').list('docs/')).map((o) => o.name), ['sub', 'd1.txt', 'd2.txt']);
        assert.deepEqual(sOk(await st.from('tree').list('docs/sub')).map((o) => o.name), ['s.txt']);
        const img = sOk(await st.from('tree').list('img'));
        assert.deepEqual(img.map((o) => o.name), ['i.png']);
        assert.equal(img[0].metadata.mimetype, 'image/png');
        assert.deepEqual(sOk(await st.from('tree').list('nothing-here')), []);
        assert.deepEqual(sOk(await st.from('tree').list('doc')), [], "'doc' is not a folder (no partial-name match)");
      });

      test('search filters names by prefix within the folder', async () => {
        assert.deepEqual(sOk(await st.from('tree').list('', { search: 'b' })).map((o) => o.name), ['b.txt']);
        assert.deepEqual(sOk(await st.from('tree').list('docs', { search: 'd' })).map((o) => o.name), ['d1.txt', 'd2.txt']);
        assert.deepEqual(sOk(await st.from('tree').list('', { search: 'zzz' })), []);
      });

      test('limit and offset page through the listing', async () => {
        assert.deepEqual(sOk(await st.from('tree').list('', { limit: 2 })).map((o) => o.name), ['docs', 'img']);
        assert.deepEqual(sOk(await st.from('tree').list('', { limit: 2, offset: 2 })).map((o) => o.name), ['a.txt', 'b.txt']);
        assert.deepEqual(sOk(await st.from('tree').list('', { limit: 2, offset: 4 })).map((o) => o.name), ['c.txt']);
        assert.deepEqual(sOk(await st.from('tree').list('', { limit: 2, offset: 10 })), []);
      });

      test('sortBy name desc reverses the order (folders still first)', async () => {
        const list = sOk(await st.from('tree').list('', { sortBy: { column: 'name', order: 'desc' } }));
        assert.deepEqual(list.map((o) => o.name), ['img', 'docs', 'c.txt', 'b.txt', 'a.txt']);
        const docs = sOk(await st.from('tree').list('docs', { sortBy: { column: 'name', order: 'desc' }, limit: 2 }));
        assert.deepEqual(docs.map((o) => o.name), ['sub', 'd2.txt']);
      });

      test('list on a missing bucket fails with 404', async () => {
        sFails(await st.from('no-such-bucket').list(), [404, 400], 'list missing bucket');
      });

      // storage-js types: `key` is the full path (optional), `name` the entry's name.
      const fullKey = (o) => o.key ?? o.name;
      test('listV2 with a delimiter: objects and folders (folder keys end with /) under the prefix', async () => {
        assert.equal(typeof st.from('tree').listV2, 'function', 'supabase-js 2.119.1 exposes listV2');
        const data = sOk(await st.from('tree').listV2({ prefix: 'docs/', with_delimiter: true }));
        assert.equal(data.hasNext, false, JSON.stringify(data));
        assert.deepEqual(data.objects.map(fullKey), ['docs/d1.txt', 'docs/d2.txt'], JSON.stringify(data));
        for (const o of data.objects) assert.ok(fullKey(o).endsWith(o.name), `name is the tail of the key: ${JSON.stringify(o)}`);
        assert.deepEqual(data.folders.map(fullKey), ['docs/sub/'], JSON.stringify(data));
        for (const o of data.objects) {
          assert.equal(typeof o.id, 'string');
          assert.equal(o.metadata?.size, Buffer.byteLength(`content of ${fullKey(o)}`), JSON.stringify(o));
        }
        const root = sOk(await st.from('tree').listV2({ with_delimiter: true }));
        assert.deepEqual(root.objects.map(fullKey), ['a.txt', 'b.txt', 'c.txt']);
        assert.deepEqual(root.folders.map(fullKey), ['docs/', 'img/']);
      });

      test('listV2 without a delimiter lists every key under the prefix', async () => {
        const data = sOk(await st.from('tree').listV2({ prefix: 'docs/' }));
        assert.deepEqual(data.objects.map(fullKey), ['docs/d1.txt', 'docs/d2.txt', 'docs/sub/s.txt'], JSON.stringify(data));
        assert.deepEqual(data.folders ?? [], []);
      });

      test('listV2 pages with limit and cursor', async () => {
        const seen = [];
        let cursor;
        for (let i = 0; i < 10; i++) {
          const data = sOk(await st.from('tree').listV2({ limit: 3, cursor }));
          assert.ok(data.objects.length <= 3, JSON.stringify(data));
          seen.push(...data.objects.map(fullKey));
          if (!data.hasNext) break;
          assert.equal(typeof data.nextCursor, 'string', `hasNext needs a nextCursor: ${JSON.stringify(data)}`);
          cursor = data.nextCursor;
        }
        assert.deepEqual(seen, [...files].sort());
      });
    });

    // ------------------------------------------------------------------------------ public
    describe('public buckets and URLs', () => {
      test('getPublicUrl of a public bucket downloads without any key; ?download= sets attachment', async () => {
        const p = `docs/${uniq('pub')}.txt`;
        sOk(await st.from('pub').upload(p, 'public bytes', { contentType: 'text/plain' }));
        const { publicUrl } = st.from('pub').getPublicUrl(p).data;
        assert.equal(publicUrl, `${srv.url}/storage/v1/object/public/pub/${p}`);
        const r = await fetch(publicUrl);
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'public bytes');
        assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
        assert.equal(r.headers.get('cache-control'), 'max-age=3600');
        assert.ok(r.headers.get('etag'), 'public responses carry an ETag');
        assert.ok(!/attachment/i.test(r.headers.get('content-disposition') ?? ''), 'no attachment without ?download');

        const dl = await fetch(st.from('pub').getPublicUrl(p, { download: 'name.txt' }).data.publicUrl);
        assert.equal(dl.status, 200);
        const cd = dl.headers.get('content-disposition') ?? '';
        assert.match(cd, /^attachment/i, `Content-Disposition: ${cd}`);
        assert.ok(cd.includes('name.txt'), `Content-Disposition must name the file: ${cd}`);
        assert.equal(await dl.text(), 'public bytes');

        const dl2 = await fetch(st.from('pub').getPublicUrl(p, { download: true }).data.publicUrl);
        assert.equal(dl2.status, 200);
        const cd2 = dl2.headers.get('content-disposition') ?? '';
        assert.match(cd2, /^attachment/i, `download=true: ${cd2}`);
        assert.ok(cd2.includes(p.split('/').pop()), `download=true names the object's own file name: ${cd2}`);
        await dl2.text();

        // Range works on the public route too
        const rr = await fetch(publicUrl, { headers: { Range: 'bytes=0-5' } });
        assert.equal(rr.status, 206);
        assert.equal(await rr.text(), 'public');
      });

      test('a missing object in a public bucket is 404', async () => {
        const r = await sfetch(srv, '/object/public/pub/not/there.txt', { auth: false });
        assertHttpError(r, 404, 'missing public object');
      });

      test('the public URL of a private bucket does not serve the object', async () => {
        const p = `${uniq('priv')}.txt`;
        sOk(await st.from('files').upload(p, 'private bytes'));
        const r = await sfetch(srv, `/object/public/files/${p}`, { auth: false });
        assertHttpError(r, [400, 404], 'public URL on private bucket');
        assert.ok(!r.text.includes('private bytes'));
        // even with the service key the public route does not serve private buckets
        const r2 = await sfetch(srv, `/object/public/files/${p}`);
        assert.ok([400, 404].includes(r2.status), showHttp(r2));
      });
    });

    // ------------------------------------------------------------------------------ signed URLs
    describe('signed URLs', () => {
      test('createSignedUrl gives an absolute URL that downloads without any key', async () => {
        const p = `sig/${uniq('s')}.txt`;
        sOk(await st.from('files').upload(p, 'signed bytes', { contentType: 'text/plain' }));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 60));
        assert.ok(signedUrl.startsWith(`${srv.url}/storage/v1/object/sign/files/${p}?token=`), signedUrl);
        const r = await fetch(signedUrl);
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'signed bytes');
        assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
      });

      test('a signed URL names a path: after an upsert it serves the new bytes, after remove nothing', async () => {
        const p = `${uniq('sigpath')}.txt`;
        sOk(await st.from('files').upload(p, 'first version'));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 60));
        sOk(await st.from('files').upload(p, 'second version', { upsert: true }));
        const r = await fetch(signedUrl);
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'second version');
        sOk(await st.from('files').remove([p]));
        const gone = await sfetch(srv, signedUrl, { auth: false });
        assertHttpError(gone, [404, 400], 'signed URL of a removed object');
        assert.ok(!gone.text.includes('version'));
      });

      test('createSignedUrl with download sets Content-Disposition: attachment', async () => {
        const p = `${uniq('sd')}.txt`;
        sOk(await st.from('files').upload(p, 'dl'));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 60, { download: 'report.txt' }));
        const r = await fetch(signedUrl);
        assert.equal(r.status, 200);
        const cd = r.headers.get('content-disposition') ?? '';
        assert.match(cd, /^attachment/i, cd);
        assert.ok(cd.includes('report.txt'), cd);
      });

      test('a signed URL for a missing object cannot be created (404)', async () => {
        sFails(await st.from('files').createSignedUrl('missing/sig.txt', 60), 404, 'sign missing');
      });

      test('a tampered token, or a token used for another path, is refused', async () => {
        const a = `${uniq('ta')}.txt`;
        const b = `${uniq('tb')}.txt`;
        sOk(await st.from('files').upload(a, 'AAA'));
        sOk(await st.from('files').upload(b, 'BBB'));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(a, 60));
        const u = new URL(signedUrl);
        const token = u.searchParams.get('token');
        const parts = token.split('.');
        const s = parts[2];
        const i = Math.floor(s.length / 2);
        parts[2] = `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
        const r1 = await sfetch(srv, `/object/sign/files/${a}?token=${parts.join('.')}`, { auth: false });
        assert.ok([400, 401, 403].includes(r1.status), `tampered token: ${showHttp(r1)}`);
        assert.ok(!r1.text.includes('AAA'));
        const r2 = await sfetch(srv, `/object/sign/files/${b}?token=${token}`, { auth: false });
        assert.ok([400, 401, 403].includes(r2.status), `token of another path: ${showHttp(r2)}`);
        assert.ok(!r2.text.includes('BBB'));
        const r3 = await sfetch(srv, `/object/sign/files/${a}`, { auth: false });
        assert.ok([400, 401, 403].includes(r3.status), `no token: ${showHttp(r3)}`);
        // the API keys are not signed-URL tokens
        const r4 = await sfetch(srv, `/object/sign/files/${a}?token=${srv.serviceKey}`, { auth: false });
        assert.ok([400, 401, 403].includes(r4.status), `service key as token: ${showHttp(r4)}`);
        assert.ok(!r4.text.includes('AAA'));
      });

      test('an expired signed URL (expiresIn 1, after 2 s) is refused with 400', async () => {
        const p = `${uniq('exp')}.txt`;
        sOk(await st.from('files').upload(p, 'soon gone'));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 1));
        await sleep(2100);
        const r = await sfetch(srv, signedUrl, { auth: false });
        assert.equal(r.status, 400, `expired signed URL: ${showHttp(r)}`);
        assert.ok(!r.text.includes('soon gone'));
        assertHttpError(r, 400, 'expired');
      });

      test('createSignedUrls signs many paths; a missing one gets an error and no URL', async () => {
        const paths = [];
        for (let i = 0; i < 5; i++) {
          const p = `many/${uniq(`m${i}`)}.txt`;
          sOk(await st.from('files').upload(p, `body ${i}`));
          paths.push(p);
        }
        const data = sOk(await st.from('files').createSignedUrls([...paths, 'many/missing.txt'], 60));
        assert.equal(data.length, 6, JSON.stringify(data));
        for (let i = 0; i < 5; i++) {
          assert.equal(data[i].path, paths[i]);
          assert.equal(data[i].error, null, JSON.stringify(data[i]));
          const r = await fetch(data[i].signedUrl);
          assert.equal(r.status, 200, data[i].signedUrl);
          assert.equal(await r.text(), `body ${i}`);
        }
        assert.equal(data[5].path, 'many/missing.txt');
        assert.equal(data[5].signedUrl, null, JSON.stringify(data[5]));
        assert.equal(typeof data[5].error, 'string', JSON.stringify(data[5]));
      });

      test('createSignedUploadUrl + uploadToSignedUrl (with only the anon key) creates the object once', async () => {
        const p = `up/${uniq('u')}.txt`;
        const signed = sOk(await st.from('files').createSignedUploadUrl(p));
        assert.equal(signed.path, p);
        assert.equal(typeof signed.token, 'string');
        assert.ok(signed.signedUrl.startsWith(`${srv.url}/storage/v1/object/upload/sign/files/${p}?token=`), signed.signedUrl);
        const anon = srv.client('anon').storage;
        const up = sOk(await anon.from('files').uploadToSignedUrl(p, signed.token, 'via signed upload', { contentType: 'text/plain' }));
        assert.equal(up.path, p);
        assert.equal(up.fullPath, `files/${p}`);
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'via signed upload');
        // the token does not allow overwriting (it was made without upsert)
        sFails(await anon.from('files').uploadToSignedUrl(p, signed.token, 'overwrite'), [409, 400], 'second signed upload');
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'via signed upload');
        // nor uploading another path
        const other = `up/${uniq('other')}.txt`;
        sFails(await anon.from('files').uploadToSignedUrl(other, signed.token, 'elsewhere'), [400, 403], 'token for another path');
        assert.equal((await st.from('files').exists(other)).data, false);
      });

      test('createSignedUploadUrl with upsert lets the token replace an existing object', async () => {
        const p = `up/${uniq('ups')}.txt`;
        sOk(await st.from('files').upload(p, 'old'));
        const signed = sOk(await st.from('files').createSignedUploadUrl(p, { upsert: true }));
        sOk(await srv.client('anon').storage.from('files').uploadToSignedUrl(p, signed.token, 'new', { upsert: true }));
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'new');
      });

      test('download tokens and upload tokens are not interchangeable', async () => {
        const p = `${uniq('tok')}.txt`;
        sOk(await st.from('files').upload(p, 'original'));
        const { signedUrl } = sOk(await st.from('files').createSignedUrl(p, 60));
        const dlToken = new URL(signedUrl).searchParams.get('token');
        const put = await sfetch(srv, `/object/upload/sign/files/${p}?token=${dlToken}`, {
          method: 'PUT',
          auth: false,
          headers: { 'Content-Type': 'text/plain', 'x-upsert': 'true' },
          body: 'overwritten with a download token',
        });
        assert.ok([400, 401, 403].includes(put.status), `upload with a download token: ${showHttp(put)}`);
        assert.equal(await sOk(await st.from('files').download(p)).text(), 'original');

        const q = `${uniq('tok')}.txt`;
        const up = sOk(await st.from('files').createSignedUploadUrl(q, { upsert: true }));
        sOk(await st.from('files').upload(q, 'made by service'));
        const get = await sfetch(srv, `/object/sign/files/${q}?token=${up.token}`, { auth: false });
        assert.ok([400, 401, 403].includes(get.status), `download with an upload token: ${showHttp(get)}`);
        assert.ok(!get.text.includes('made by service'));
      });

      test('a garbage signed-upload token is refused and nothing is stored', async () => {
        const p = `up/${uniq('bad')}.txt`;
        sFails(await srv.client('anon').storage.from('files').uploadToSignedUrl(p, 'not-a-token', 'x'), [400, 401, 403], 'garbage token');
        assert.equal((await st.from('files').exists(p)).data, false);
      });
    });

    // ------------------------------------------------------------------------------ limits
    describe('limits', () => {
      test('bucket fileSizeLimit: 2 KB into a 1 KB bucket is 413 and nothing is stored', async () => {
        for (const bucket of ['limited', 'limited-str']) {
          const p = `${uniq('big')}.bin`;
          sFails(await st.from(bucket).upload(p, randomBytes(2048), { contentType: 'application/octet-stream' }), 413, `${bucket} 2KB`);
          assert.deepEqual(sOk(await st.from(bucket).list('', { search: p })), [], `${bucket}: nothing listed`);
          sFails(await st.from(bucket).info(p), 404, `${bucket}: info after refused upload`);
          // multipart takes the same limit
          sFails(await st.from(bucket).upload(p, new Blob([randomBytes(2048)])), 413, `${bucket} 2KB multipart`);
          assert.equal((await st.from(bucket).exists(p)).data, false);
          // exactly at the limit is fine
          const okp = `${uniq('ok')}.bin`;
          sOk(await st.from(bucket).upload(okp, randomBytes(1024), { contentType: 'application/octet-stream' }), `${bucket} 1024 B`);
          assert.equal(sOk(await st.from(bucket).info(okp)).size, 1024);
        }
      });

      test('the size limit also holds for a streamed (chunked, no Content-Length) body', async () => {
        const p = `${uniq('stream')}.bin`;
        const chunks = [randomBytes(800), randomBytes(800), randomBytes(800)];
        const stream = new ReadableStream({
          pull(controller) {
            const c = chunks.shift();
            if (c) controller.enqueue(c);
            else controller.close();
          },
        });
        const res = await st.from('limited').upload(p, stream, { contentType: 'application/octet-stream' });
        // a clean 413, not a transport error from a connection closed under the client
        sFails(res, 413, 'streamed 2400 B into 1 KB bucket');
        assert.equal((await st.from('limited').exists(p)).data, false, 'nothing stored');
        // and a small stream works
        const p2 = `${uniq('stream-ok')}.bin`;
        const small = randomBytes(500);
        const s2 = new ReadableStream({
          start(controller) {
            controller.enqueue(small.subarray(0, 200));
            controller.enqueue(small.subarray(200));
            controller.close();
          },
        });
        sOk(await st.from('limited').upload(p2, s2, { contentType: 'application/octet-stream' }), 'small stream');
        assert.ok((await blobBytes(sOk(await st.from('limited').download(p2)))).equals(small));
      });

      test(`the server-wide OUTPOST_STORAGE_MAX_FILE_SIZE (${MAX_FILE_SIZE}) holds for buckets without a limit`, async () => {
        const p = `${uniq('huge')}.bin`;
        sFails(await st.from('files').upload(p, randomBytes(MAX_FILE_SIZE + 1000), { contentType: 'application/octet-stream' }), 413, 'over max');
        assert.equal((await st.from('files').exists(p)).data, false);
        const p2 = `${uniq('under')}.bin`;
        sOk(await st.from('files').upload(p2, randomBytes(MAX_FILE_SIZE - 1000), { contentType: 'application/octet-stream' }));
      });

      test('allowedMimeTypes: text/plain into an image/png bucket is refused (415) and nothing is stored', async () => {
        const p = `${uniq('mime')}.txt`;
        const e = sFails(await st.from('pngonly').upload(p, 'not an image', { contentType: 'text/plain' }), [415, 400], 'text into pngonly');
        assert.match(e.message, /mime|type/i, `message should mention the MIME type: ${e.message}`);
        assert.deepEqual(sOk(await st.from('pngonly').list()), [], 'nothing listed');
        sFails(await st.from('pngonly').info(p), 404, 'info after refused');
        // a PNG is fine
        sOk(await st.from('pngonly').upload('ok.png', makePng(4, 4), { contentType: 'image/png' }));
        assert.deepEqual(sOk(await st.from('pngonly').list()).map((o) => o.name), ['ok.png']);
      });

      test('a refused multipart upload always reaches the client as a clean 415/413/409 (30 tries each)', async () => {
        // The refusal must not close the connection while supabase-js is still sending the
        // form; otherwise the client sees "fetch failed" (EPIPE/ECONNRESET) instead of the error.
        const outcomes = {};
        const dupPath = `${uniq('mpdup')}.txt`;
        sOk(await st.from('files').upload(dupPath, 'first'));
        for (let i = 0; i < 30; i++) {
          const p = `${uniq('mp')}.txt`;
          const r = await st.from('pngonly').upload(p, new Blob(['x'], { type: 'text/plain' }));
          const k = `mime: ${r.error?.name} ${r.error?.status} ${r.error?.name === 'StorageUnknownError' ? r.error.originalError?.cause?.code : ''}`;
          outcomes[k] = (outcomes[k] ?? 0) + 1;
          const r2 = await st.from('limited').upload(`${uniq('mp')}.bin`, new Blob([randomBytes(4096)]));
          const k2 = `size: ${r2.error?.name} ${r2.error?.status} ${r2.error?.name === 'StorageUnknownError' ? r2.error.originalError?.cause?.code : ''}`;
          outcomes[k2] = (outcomes[k2] ?? 0) + 1;
          const r3 = await st.from('files').upload(dupPath, new Blob(['again'], { type: 'text/plain' }));
          const k3 = `dup: ${r3.error?.name} ${r3.error?.status} ${r3.error?.name === 'StorageUnknownError' ? r3.error.originalError?.cause?.code : ''}`;
          outcomes[k3] = (outcomes[k3] ?? 0) + 1;
        }
        assert.equal(await sOk(await st.from('files').download(dupPath)).text(), 'first', 'duplicates kept the first bytes');
        const bad = Object.keys(outcomes).filter((k) => !k.includes('StorageApiError'));
        assert.deepEqual(bad, [], `every refusal must be an API error: ${JSON.stringify(outcomes)}`);
        for (const k of Object.keys(outcomes)) {
          assert.ok(/^mime: StorageApiError (415|400) $|^size: StorageApiError (413|400) $|^dup: StorageApiError (409|400) $/.test(k), JSON.stringify(outcomes));
        }
        assert.deepEqual(sOk(await st.from('pngonly').list()).filter((o) => o.name.startsWith('mp-')), [], 'nothing stored');
      });

      test("allowedMimeTypes with a wildcard ('image/*')", async () => {
        sOk(await st.from('imagesany').upload(`${uniq('j')}.jpg`, makeJpeg(8, 8), { contentType: 'image/jpeg' }));
        sOk(await st.from('imagesany').upload(`${uniq('p')}.png`, makePng(2, 2), { contentType: 'image/png' }));
        const p = `${uniq('t')}.txt`;
        sFails(await st.from('imagesany').upload(p, 'text', { contentType: 'text/plain' }), [415, 400], 'text into image/*');
        sFails(await st.from('imagesany').upload(p, 'x', { contentType: 'application/json' }), [415, 400], 'json into image/*');
        assert.equal((await st.from('imagesany').exists(p)).data, false);
      });

      test('a cut-off upload (Content-Length 100000, socket closed after 1000 bytes) leaves no object', async () => {
        const p = `${uniq('cut')}.bin`;
        const body = randomBytes(100_000);
        const r = await rawRequest(srv, {
          method: 'POST',
          path: `/storage/v1/object/files/${p}`,
          headers: {
            ...authHeaders(srv.serviceKey),
            'Content-Type': 'application/octet-stream',
            'Content-Length': '100000',
            'x-upsert': 'false',
          },
          body,
          cut: 1000,
        });
        assert.ok(r.status === null || r.status >= 400, `a cut-off upload must not succeed: ${JSON.stringify(r.status)}`);
        await sleep(500);
        assert.equal((await st.from('files').exists(p)).data, false, 'cut-off upload became an object');
        assert.deepEqual(sOk(await st.from('files').list('', { search: p })), []);
        // the name is not blocked: a full upload to the same path works
        sOk(await st.from('files').upload(p, body.subarray(0, 5000), { contentType: 'application/octet-stream' }));
        assert.equal(sOk(await st.from('files').info(p)).size, 5000);
        // a cut-off upsert leaves the existing object intact
        const r2 = await rawRequest(srv, {
          method: 'POST',
          path: `/storage/v1/object/files/${p}`,
          headers: {
            ...authHeaders(srv.serviceKey),
            'Content-Type': 'application/octet-stream',
            'Content-Length': '100000',
            'x-upsert': 'true',
          },
          body,
          cut: 1000,
        });
        assert.ok(r2.status === null || r2.status >= 400, `cut-off upsert must not succeed: ${r2.status}`);
        await sleep(300);
        const after = await blobBytes(sOk(await st.from('files').download(p)));
        assert.ok(after.equals(body.subarray(0, 5000)), 'a cut-off upsert changed the object');
      });

      test('a cut-off multipart upload (socket closed mid-part) leaves no object', async () => {
        const p = `${uniq('cutmp')}.bin`;
        const boundary = '----outposttest';
        const full = Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="cacheControl"\r\n\r\n3600\r\n--${boundary}\r\n` +
            `Content-Disposition: form-data; name=""; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
          randomBytes(50_000),
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]);
        const r = await rawRequest(srv, {
          method: 'POST',
          path: `/storage/v1/object/files/${p}`,
          headers: {
            ...authHeaders(srv.serviceKey),
            'Content-Type': `multipart/form-data; boundary=${boundary}`,
            'Content-Length': String(full.length),
          },
          body: full,
          cut: 2000,
        });
        assert.ok(r.status === null || r.status >= 400, `cut multipart must not succeed: ${r.status}`);
        await sleep(500);
        assert.equal((await st.from('files').exists(p)).data, false, 'cut-off multipart upload became an object');
      });
    });

    // ------------------------------------------------------------------------------ paths
    describe('path safety', () => {
      async function snapshot() {
        const root = sOk(await st.from('files').list('', { limit: 1000 }));
        return root.map((o) => o.name).sort();
      }

      test("the client strips a leading '/': '/etc/passwd' is stored as etc/passwd inside the bucket", async () => {
        const data = sOk(await st.from('files2').upload('/etc/passwd', 'not really'));
        assert.equal(data.path, 'etc/passwd');
        assert.equal(data.fullPath, 'files2/etc/passwd');
        assert.deepEqual(sOk(await st.from('files2').list('etc')).map((o) => o.name), ['passwd']);
        assert.equal(await sOk(await st.from('files2').download('etc/passwd')).text(), 'not really');
      });

      test("'..' segments (raw and percent-encoded), backslashes, NUL: refused with 400 and nothing is written", async () => {
        const before = await snapshot();
        const marker = `dotdot-${randomBytes(8).toString('hex')}`;
        const bad = [
          '/storage/v1/object/files/../x.txt',
          '/storage/v1/object/files/a/../../x.txt',
          '/storage/v1/object/files/..%2F..%2Fx.txt',
          '/storage/v1/object/files/%2e%2e/%2e%2e/x.txt',
          '/storage/v1/object/files/a/%2E%2E/%2E%2E/etc/passwd',
          '/storage/v1/object/files/..',
          '/storage/v1/object/files/a%5C..%5C..%5Cx.txt', // backslashes
          '/storage/v1/object/files/a%00b.txt', // NUL
        ];
        for (const p of bad) {
          const r = await rawRequest(srv, {
            method: 'POST',
            path: p,
            headers: { ...authHeaders(srv.serviceKey), 'Content-Type': 'text/plain', 'x-upsert': 'true' },
            body: Buffer.from(marker),
          });
          assert.ok(statusIs(r.status, r.json?.statusCode, 400), `POST ${p} must be refused with 400, got ${r.status} ${r.text}`);
          assert.equal(typeof r.json?.message, 'string', `POST ${p}: error body ${r.text}`);
        }
        assert.deepEqual(await snapshot(), before, 'listing changed after refused uploads');
        // nothing with the marker reached the disk outside the store's own files
        const dataHits = await filesContaining(path.dirname(srv.dataDir), marker);
        assert.deepEqual(dataHits, [], `marker bytes written to ${dataHits.join(', ')}`);
        assert.ok(!existsSync(path.join(srv.dataDir, 'x.txt')));
        assert.ok(!existsSync(path.join(path.dirname(srv.dataDir), 'x.txt')));
      });

      test("reading or signing a '..' path is refused too", async () => {
        for (const p of ['/storage/v1/object/files/../files2/etc/passwd', '/storage/v1/object/files/..%2Ffiles2%2Fetc%2Fpasswd']) {
          const r = await rawRequest(srv, { method: 'GET', path: p, headers: authHeaders(srv.serviceKey) });
          assert.ok([400, 404].includes(r.status), `GET ${p}: ${r.status} ${r.text}`);
          assert.ok(!r.text.includes('not really'), `GET ${p} escaped into another bucket`);
        }
        const info = await rawRequest(srv, {
          method: 'GET',
          path: '/storage/v1/object/info/files/..%2F..%2Fx',
          headers: authHeaders(srv.serviceKey),
        });
        assert.ok([400, 404].includes(info.status), `info of ..: ${info.status} ${info.text}`);
      });

      test("the client's own URL normalisation cannot escape the bucket ('a/../../etc/passwd')", async () => {
        const before = await snapshot();
        const res = await st.from('files').upload('a/../../etc/passwd', 'escaped?');
        // fetch resolves the dots: the request lands on /object/etc/passwd (bucket 'etc'), which does not exist
        assert.ok(res.error, `upload of a/../../etc/passwd must fail: ${showRes(res)}`);
        assert.deepEqual(await snapshot(), before);
        assert.equal(await sOk(await st.from('files2').download('etc/passwd')).text(), 'not really', 'files2/etc/passwd untouched');
        sFails(await st.getBucket('etc'), 404, 'no bucket etc appeared');
      });

      test('move/copy to a ".." destination are refused', async () => {
        const src = `${uniq('mvsrc')}.txt`;
        sOk(await st.from('files').upload(src, 'stay'));
        sFails(await st.from('files').move(src, '../escape.txt'), 400, 'move to ..');
        sFails(await st.from('files').copy(src, 'a/../../escape.txt'), 400, 'copy to ..');
        assert.equal(await sOk(await st.from('files').download(src)).text(), 'stay');
        assert.equal((await st.from('files').exists('escape.txt')).data, false);
      });
    });

    // ------------------------------------------------------------------------------ CORS
    describe('browsers (CORS)', () => {
      const ORIGIN = 'http://app.example.test';
      const splitList = (v) => (v ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
      async function preflight(p, method, headers) {
        const res = await fetch(`${srv.url}/storage/v1${p}`, {
          method: 'OPTIONS',
          headers: { Origin: ORIGIN, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers.join(',') },
        });
        await res.text();
        assert.ok(res.status >= 200 && res.status < 300, `preflight ${method} ${p}: ${res.status}`);
        const origin = res.headers.get('access-control-allow-origin');
        assert.ok(origin === '*' || origin === ORIGIN, `allow-origin: ${origin}`);
        const allowHeaders = splitList(res.headers.get('access-control-allow-headers'));
        if (!allowHeaders.includes('*')) {
          for (const h of headers) assert.ok(allowHeaders.includes(h), `allow-headers lacks ${h}: ${allowHeaders}`);
        }
        const allowMethods = splitList(res.headers.get('access-control-allow-methods'));
        if (!allowMethods.includes('*')) assert.ok(allowMethods.includes(method.toLowerCase()), `allow-methods lacks ${method}: ${allowMethods}`);
      }

      test('preflights for uploads and downloads allow what storage-js sends', async () => {
        const h = ['apikey', 'authorization', 'x-client-info', 'content-type', 'x-upsert', 'cache-control', 'x-metadata'];
        await preflight('/object/files/some/file.txt', 'POST', h);
        await preflight('/object/files/some/file.txt', 'PUT', h);
        await preflight('/object/files', 'DELETE', ['apikey', 'authorization', 'content-type']);
        await preflight('/object/files/some/file.txt', 'GET', ['apikey', 'authorization', 'x-client-info', 'range']);
      });

      test('preflights for resumable uploads allow the TUS headers and methods', async () => {
        const h = ['apikey', 'authorization', 'x-client-info', 'tus-resumable', 'upload-length', 'upload-metadata', 'x-upsert'];
        await preflight('/upload/resumable', 'POST', h);
        await preflight('/upload/resumable/some-id', 'PATCH', ['apikey', 'authorization', 'tus-resumable', 'upload-offset', 'content-type']);
        await preflight('/upload/resumable/some-id', 'HEAD', ['apikey', 'authorization', 'tus-resumable']);
      });

      test('responses expose what browser clients read: Location/Upload-Offset (TUS), Content-Range', async () => {
        const res = await fetch(`${srv.url}/storage/v1/upload/resumable`, {
          method: 'POST',
          headers: {
            Origin: ORIGIN,
            ...authHeaders(srv.serviceKey),
            'Tus-Resumable': '1.0.0',
            'Upload-Length': '3',
            'Upload-Metadata': tusMeta({ bucketName: 'files', objectName: `cors/${uniq('c')}.txt`, contentType: 'text/plain' }),
          },
        });
        await res.text();
        assert.equal(res.status, 201);
        const origin = res.headers.get('access-control-allow-origin');
        assert.ok(origin === '*' || origin === ORIGIN, `allow-origin: ${origin}`);
        const expose = splitList(res.headers.get('access-control-expose-headers'));
        if (!expose.includes('*')) {
          for (const h of ['location', 'upload-offset', 'tus-resumable']) assert.ok(expose.includes(h), `expose-headers lacks ${h}: ${expose}`);
        }
        const p = `cors/${uniq('r')}.txt`;
        sOk(await st.from('files').upload(p, '0123456789abcdef'));
        const r = await fetch(`${srv.url}/storage/v1/object/files/${p}`, { headers: { Origin: ORIGIN, ...authHeaders(srv.serviceKey), Range: 'bytes=0-3' } });
        await r.text();
        assert.equal(r.status, 206);
        const ex2 = splitList(r.headers.get('access-control-expose-headers'));
        assert.ok(ex2.includes('*') || ex2.includes('content-range'), `expose-headers: ${ex2}`);
      });
    });

    // ------------------------------------------------------------------------------ concurrency
    describe('concurrent writes', () => {
      test('five parallel uploads of one new path without upsert: exactly one wins, the rest are 409', async () => {
        const p = `race/${uniq('r')}.txt`;
        const base = await storedKeys(srv, env);
        const bodies = [0, 1, 2, 3, 4].map((i) => `body number ${i} ${'x'.repeat(i * 100)}`);
        const results = await Promise.all(bodies.map((b) => st.from('files2').upload(p, b)));
        const winners = results.filter((r) => !r.error);
        assert.equal(winners.length, 1, `exactly one upload may win: ${results.map(showRes).join('\n')}`);
        for (const r of results.filter((x) => x.error)) sFails(r, 409, 'losing upload');
        const got = await sOk(await st.from('files2').download(p)).text();
        const w = results.findIndex((r) => !r.error);
        assert.equal(got, bodies[w], 'the stored bytes are the winner\'s');
        assert.equal(sOk(await st.from('files2').info(p)).size, Buffer.byteLength(bodies[w]));
        const k = await eventually(async () => {
          const keys = await storedKeys(srv, env);
          return keys.length === base.length + 1 ? keys : null;
        });
        assert.ok(k, `losers must leave no bytes: ${(await storedKeys(srv, env)).length - base.length} new keys`);
      });

      test('two parallel moves of one object: one wins, the object exists exactly once', async () => {
        for (let round = 0; round < 5; round++) {
          const src = `race/${uniq('mv')}.txt`;
          sOk(await st.from('files2').upload(src, `move race ${round}`));
          const [a, b] = await Promise.all([
            st.from('files2').move(src, `${src}.a`),
            st.from('files2').move(src, `${src}.b`),
          ]);
          const wins = [a, b].filter((r) => !r.error).length;
          assert.equal(wins, 1, `round ${round}: exactly one move may win: ${showRes(a)} ${showRes(b)}`);
          const exists = [];
          for (const p of [src, `${src}.a`, `${src}.b`]) if ((await st.from('files2').exists(p)).data) exists.push(p);
          assert.equal(exists.length, 1, `round ${round}: the object must exist exactly once: ${exists}`);
          assert.equal(await sOk(await st.from('files2').download(exists[0])).text(), `move race ${round}`);
        }
      });

      test('deleteBucket racing an upload: never both (no object left in a deleted bucket)', async () => {
        for (let round = 0; round < 5; round++) {
          const id = uniq('delrace');
          sOk(await st.createBucket(id));
          const [del, up] = await Promise.all([st.deleteBucket(id), st.from(id).upload('x.txt', 'racing')]);
          assert.ok(del.error || up.error, `round ${round}: deleteBucket and upload both succeeded: ${showRes(del)} ${showRes(up)}`);
          if (!del.error) {
            sFails(await st.getBucket(id), 404, 'deleted bucket');
            sFails(await st.from(id).download('x.txt'), [404, 400], 'object of a deleted bucket');
          } else {
            assert.equal(await sOk(await st.from(id).download('x.txt')).text(), 'racing');
          }
        }
      });

      test('five parallel upserts of one path: all succeed, one version remains, its bytes match its size', async () => {
        const p = `race/${uniq('u')}.txt`;
        sOk(await st.from('files2').upload(p, 'seed'));
        const base = await storedKeys(srv, env);
        const bodies = [0, 1, 2, 3, 4].map((i) => `upsert ${i} ${'y'.repeat(i * 50)}`);
        const results = await Promise.all(bodies.map((b) => st.from('files2').upload(p, b, { upsert: true })));
        for (const r of results) sOk(r, 'parallel upsert');
        const got = await sOk(await st.from('files2').download(p)).text();
        assert.ok(bodies.includes(got), `final bytes are one of the uploads: ${got}`);
        assert.equal(sOk(await st.from('files2').info(p)).size, Buffer.byteLength(got), 'size matches the bytes');
        const listed = sOk(await st.from('files2').list('race', { search: p.split('/')[1] }));
        assert.equal(listed.length, 1, JSON.stringify(listed));
        const k = await eventually(async () => {
          const keys = await storedKeys(srv, env);
          return keys.length === base.length ? keys : null;
        });
        assert.ok(k, `replaced versions must not leave bytes: ${(await storedKeys(srv, env)).length - base.length} extra keys`);
      });
    });

    // ------------------------------------------------------------------------------ backend
    describe(`object bytes live in the ${backend} backend`, () => {
      test('an upload adds exactly one key under objects/; remove and upsert clean up old bytes', async () => {
        const baseline = await storedKeys(srv, env);
        const marker = `marker-${randomBytes(16).toString('hex')}`;
        const p = `${uniq('backend')}.txt`;
        sOk(await st.from('files2').upload(p, marker, { contentType: 'text/plain' }));
        const afterUp = await storedKeys(srv, env);
        const added = afterUp.filter((k) => !baseline.includes(k));
        assert.equal(added.length, 1, `one new key expected, got ${JSON.stringify(added)}`);
        assert.match(added[0], /(^|\/)objects\//, `keys live under objects/: ${added[0]}`);
        assert.ok(!added[0].includes(p), `the key must not come from the object name: ${added[0]}`);

        const dataHits = (await filesContaining(srv.dataDir, marker)).map((f) => path.relative(srv.dataDir, f));
        if (backend === 's3') {
          assert.deepEqual(dataHits, [], `with the s3 backend no object bytes belong in the data dir: ${dataHits}`);
        } else {
          assert.equal(dataHits.length, 1, `fs backend: the bytes are in one file under the data dir: ${dataHits}`);
        }

        // upsert: still one key for this object (the old version's bytes are deleted)
        sOk(await st.from('files2').upload(p, `${marker}-v2`, { upsert: true }));
        const afterUpsert = await eventually(async () => {
          const k = await storedKeys(srv, env);
          return k.length === afterUp.length ? k : null;
        });
        assert.ok(afterUpsert, `upsert must not leave the old bytes behind: ${JSON.stringify((await storedKeys(srv, env)).filter((k) => !baseline.includes(k)))}`);

        // remove: back to the baseline
        sOk(await st.from('files2').remove([p]));
        const afterRm = await eventually(async () => {
          const k = await storedKeys(srv, env);
          return k.length === baseline.length ? k : null;
        });
        assert.ok(afterRm, `remove must delete the bytes: ${JSON.stringify((await storedKeys(srv, env)).filter((k) => !baseline.includes(k)))}`);
      });

      test('emptyBucket deletes the bytes of every object', async () => {
        const id = uniq('emptybytes');
        sOk(await st.createBucket(id));
        const baseline = await storedKeys(srv, env);
        for (let i = 0; i < 3; i++) sOk(await st.from(id).upload(`f${i}.txt`, `e${i}`));
        assert.equal((await storedKeys(srv, env)).length, baseline.length + 3);
        sOk(await st.emptyBucket(id));
        const k = await eventually(async () => {
          const keys = await storedKeys(srv, env);
          return keys.length === baseline.length ? keys : null;
        });
        assert.ok(k, 'emptyBucket left bytes behind');
      });

      test('copy stores independent bytes; move does not duplicate them', async () => {
        const src = `${uniq('cb')}.txt`;
        sOk(await st.from('files2').upload(src, 'copy bytes'));
        const base = await storedKeys(srv, env);
        sOk(await st.from('files2').copy(src, `${src}.copy`));
        sOk(await st.from('files2').move(src, `${src}.moved`));
        const k = await eventually(async () => {
          const keys = await storedKeys(srv, env);
          return keys.length === base.length + 1 ? keys : null;
        });
        assert.ok(k, `copy adds one key, move adds none: ${(await storedKeys(srv, env)).length - base.length}`);
        sOk(await st.from('files2').remove([`${src}.copy`]));
        assert.equal(await sOk(await st.from('files2').download(`${src}.moved`)).text(), 'copy bytes');
      });

      test('a cut-off upload leaves no stray bytes in the store', async () => {
        const base = await storedKeys(srv, env);
        const p = `${uniq('cutbytes')}.bin`;
        await rawRequest(srv, {
          method: 'POST',
          path: `/storage/v1/object/files2/${p}`,
          headers: { ...authHeaders(srv.serviceKey), 'Content-Type': 'application/octet-stream', 'Content-Length': '100000' },
          body: randomBytes(100_000),
          cut: 1000,
        });
        const k = await eventually(async () => {
          const keys = await storedKeys(srv, env);
          return keys.length === base.length ? keys : null;
        }, 10_000, 250);
        assert.ok(k, `stray bytes after a cut-off upload: ${JSON.stringify((await storedKeys(srv, env)).filter((x) => !base.includes(x)))}`);
        // and a refused (too large) upload stores no bytes either
        sFails(await st.from('limited').upload(`${uniq('big')}.bin`, randomBytes(4096), { contentType: 'application/octet-stream' }), 413);
        const k2 = await eventually(async () => {
          const keys = await storedKeys(srv, env);
          return keys.length === base.length ? keys : null;
        });
        assert.ok(k2, 'a refused upload left bytes in the store');
      });
    });

    // ------------------------------------------------------------------------------ transforms
    if (transforms) {
      describe('image transforms (/render/image)', () => {
        before(async () => {
          sOk(await st.from('files').upload('img/pic.png', makePng(40, 20), { contentType: 'image/png' }));
          sOk(await st.from('files').upload('img/photo.jpg', makeJpeg(48, 24), { contentType: 'image/jpeg' }));
          sOk(await st.from('files').upload('img/not-an-image.txt', 'plain text, not pixels', { contentType: 'text/plain' }));
          sOk(await st.from('pub').upload('img/pic.png', makePng(40, 20), { contentType: 'image/png', upsert: true }));
        });

        const render = async (bucketPath, transform) => {
          const res = await st.from('files').download(bucketPath, { transform });
          return res;
        };

        test('the untransformed download is the original 40x20 PNG', async () => {
          const buf = await blobBytes(sOk(await st.from('files').download('img/pic.png')));
          assert.deepEqual(imageInfo(buf), { format: 'png', width: 40, height: 20 });
          assert.ok(buf.equals(makePng(40, 20)));
        });

        test('width 10, height 10, resize cover: a 10x10 image', async () => {
          const blob = sOk(await render('img/pic.png', { width: 10, height: 10, resize: 'cover' }));
          const info = imageInfo(await blobBytes(blob));
          assert.deepEqual([info.width, info.height], [10, 10], JSON.stringify(info));
          assert.ok(['png', 'webp', 'jpeg'].includes(info.format), JSON.stringify(info));
        });

        test("format 'origin' keeps PNG; contain fits inside the box; fill stretches", async () => {
          const cover = imageInfo(await blobBytes(sOk(await render('img/pic.png', { width: 10, height: 10, resize: 'cover', format: 'origin' }))));
          assert.deepEqual(cover, { format: 'png', width: 10, height: 10 });
          const contain = imageInfo(await blobBytes(sOk(await render('img/pic.png', { width: 10, height: 10, resize: 'contain', format: 'origin' }))));
          assert.deepEqual(contain, { format: 'png', width: 10, height: 5 }, 'contain keeps the 2:1 aspect inside 10x10');
          const fill = imageInfo(await blobBytes(sOk(await render('img/pic.png', { width: 10, height: 10, resize: 'fill', format: 'origin' }))));
          assert.deepEqual(fill, { format: 'png', width: 10, height: 10 });
        });

        test('only a width keeps the aspect ratio', async () => {
          const info = imageInfo(await blobBytes(sOk(await render('img/pic.png', { width: 20, format: 'origin' }))));
          assert.deepEqual(info, { format: 'png', width: 20, height: 10 });
          const h = imageInfo(await blobBytes(sOk(await render('img/pic.png', { height: 5, format: 'origin' }))));
          assert.deepEqual(h, { format: 'png', width: 10, height: 5 });
        });

        test('the transformed response says image/png', async () => {
          const r = await sfetch(srv, '/render/image/authenticated/files/img/pic.png?width=10&height=10&format=origin');
          assert.equal(r.status, 200, showHttp(r));
          assert.match(r.headers.get('content-type') ?? '', /^image\/png/);
          assert.deepEqual(imageInfo(r.buf), { format: 'png', width: 10, height: 10 });
        });

        test('JPEG with quality (20..100): a 10x10 JPEG, lower quality = coarser quantisation', async () => {
          const q20 = await blobBytes(sOk(await render('img/photo.jpg', { width: 10, height: 10, resize: 'cover', quality: 20, format: 'origin' })));
          const q95 = await blobBytes(sOk(await render('img/photo.jpg', { width: 10, height: 10, resize: 'cover', quality: 95, format: 'origin' })));
          assert.deepEqual(imageInfo(q20), { format: 'jpeg', width: 10, height: 10 });
          assert.deepEqual(imageInfo(q95), { format: 'jpeg', width: 10, height: 10 });
          assert.ok(!q20.equals(q95), 'quality must change the output');
          assert.ok(jpegQuantSum(q20) > jpegQuantSum(q95), `q20 tables (${jpegQuantSum(q20)}) must be coarser than q95 (${jpegQuantSum(q95)})`);
          // Supabase accepts quality 20..100
          sFails(await render('img/photo.jpg', { width: 10, quality: 10 }), 400, 'quality 10');
          const r = await sfetch(srv, '/render/image/authenticated/files/img/photo.jpg?width=10&quality=101');
          assertHttpError(r, 400, 'quality 101');
        });

        test('public render URL of a public bucket works without a key', async () => {
          const { publicUrl } = st.from('pub').getPublicUrl('img/pic.png', { transform: { width: 10, height: 10, resize: 'cover', format: 'origin' } }).data;
          assert.ok(publicUrl.includes('/storage/v1/render/image/public/pub/img/pic.png?'), publicUrl);
          const r = await fetch(publicUrl);
          assert.equal(r.status, 200);
          assert.deepEqual(imageInfo(Buffer.from(await r.arrayBuffer())), { format: 'png', width: 10, height: 10 });
          // the public render route does not serve private buckets
          const priv = await sfetch(srv, '/render/image/public/files/img/pic.png?width=10', { auth: false });
          assert.ok([400, 404].includes(priv.status), `public render of private bucket: ${priv.status}`);
        });

        test('a signed URL with a transform serves the transformed image', async () => {
          const { signedUrl } = sOk(await st.from('files').createSignedUrl('img/pic.png', 60, { transform: { width: 10, height: 10, resize: 'cover', format: 'origin' } }));
          const r = await fetch(signedUrl);
          assert.equal(r.status, 200, signedUrl);
          assert.deepEqual(imageInfo(Buffer.from(await r.arrayBuffer())), { format: 'png', width: 10, height: 10 });
        });

        test('transforming a text file is a clear 4xx error; a missing image is 404', async () => {
          sFails(await render('img/not-an-image.txt', { width: 10, height: 10 }), [400, 415, 422], 'transform of text');
          sFails(await render('img/missing.png', { width: 10, height: 10 }), 404, 'transform of missing');
        });

        test('absurd transform parameters are refused', async () => {
          const r = await sfetch(srv, '/render/image/authenticated/files/img/pic.png?width=-5&height=10');
          assert.ok(r.status >= 400 && r.status < 500, `negative width: ${showHttp(r)}`);
          const r2 = await sfetch(srv, '/render/image/authenticated/files/img/pic.png?width=10&resize=explode');
          assert.ok(r2.status >= 400 && r2.status < 500, `unknown resize: ${showHttp(r2)}`);
        });
      });
    }

    // ------------------------------------------------------------------------------ TUS
    describe('resumable uploads (TUS 1.0.0)', () => {
      const tusUrl = () => `${srv.url}/storage/v1/upload/resumable`;
      const tusHeaders = (extra = {}) => ({ ...authHeaders(srv.serviceKey), 'Tus-Resumable': '1.0.0', ...extra });

      async function create({ bucket = 'files', object, length, contentType = 'application/octet-stream', cacheControl = '3600', headers = {}, key } = {}) {
        const h = key ? { ...authHeaders(key), 'Tus-Resumable': '1.0.0' } : tusHeaders();
        const res = await fetch(tusUrl(), {
          method: 'POST',
          headers: {
            ...h,
            'Upload-Length': String(length),
            'Upload-Metadata': tusMeta({ bucketName: bucket, objectName: object, contentType, cacheControl }),
            ...headers,
          },
        });
        const text = await res.text();
        const loc = res.headers.get('location');
        return { status: res.status, headers: res.headers, text, location: loc ? new URL(loc, tusUrl()).toString() : null };
      }
      async function patch(location, offset, chunk, { contentType = 'application/offset+octet-stream', key } = {}) {
        const h = key ? { ...authHeaders(key), 'Tus-Resumable': '1.0.0' } : tusHeaders();
        const res = await fetch(location, {
          method: 'PATCH',
          headers: { ...h, 'Upload-Offset': String(offset), 'Content-Type': contentType },
          body: chunk,
        });
        const text = await res.text();
        return { status: res.status, headers: res.headers, text };
      }
      async function headOf(location) {
        const res = await fetch(location, { method: 'HEAD', headers: tusHeaders() });
        await res.arrayBuffer();
        return { status: res.status, headers: res.headers };
      }

      test('create, HEAD, PATCH in three chunks: the object has the exact bytes', async () => {
        const object = `tus/${uniq('t')}.bin`;
        const bytes = randomBytes(150_000);
        const c = await create({ object, length: bytes.length, contentType: 'application/x-tus-test', cacheControl: '99' });
        assert.equal(c.status, 201, `create: ${c.status} ${c.text}`);
        assert.ok(c.location, 'Location header missing');
        assert.ok(c.location.startsWith(`${tusUrl()}/`), `Location under /upload/resumable/: ${c.location}`);
        assert.equal(c.headers.get('tus-resumable'), '1.0.0');

        let h = await headOf(c.location);
        assert.equal(h.status, 200);
        assert.equal(h.headers.get('upload-offset'), '0');
        assert.equal(h.headers.get('upload-length'), String(bytes.length));
        assert.equal(h.headers.get('tus-resumable'), '1.0.0');

        const cuts = [0, 60_000, 120_000, bytes.length];
        for (let i = 0; i < 3; i++) {
          const p = await patch(c.location, cuts[i], bytes.subarray(cuts[i], cuts[i + 1]));
          assert.equal(p.status, 204, `PATCH ${i}: ${p.status} ${p.text}`);
          assert.equal(p.headers.get('upload-offset'), String(cuts[i + 1]));
          if (i === 0) {
            h = await headOf(c.location);
            assert.equal(h.headers.get('upload-offset'), String(cuts[1]));
            assert.equal((await st.from('files').exists(object)).data, false, 'an incomplete upload must not be an object');
          }
        }
        const got = await blobBytes(sOk(await st.from('files').download(object)));
        assert.equal(got.length, bytes.length);
        assert.ok(got.equals(bytes), 'TUS bytes differ');
        const info = sOk(await st.from('files').info(object));
        assert.equal(info.contentType, 'application/x-tus-test');
        assert.equal(info.size, bytes.length);
        assert.equal(info.cacheControl, 'max-age=99', 'cacheControl from Upload-Metadata');
        // the finished upload is gone from the resumable endpoint or reports itself complete
        const done = await headOf(c.location);
        assert.ok(done.status === 404 || done.headers.get('upload-offset') === String(bytes.length), `HEAD after completion: ${done.status}`);
        // and it cannot be appended to
        const more = await patch(c.location, bytes.length, Buffer.from('extra'));
        assert.ok(more.status >= 400 && more.status < 500, `PATCH after completion: ${more.status} ${more.text}`);
        assert.ok((await blobBytes(sOk(await st.from('files').download(object)))).equals(bytes), 'object unchanged');
      });

      test('a PATCH at the wrong offset is 409 and changes nothing', async () => {
        const object = `tus/${uniq('off')}.bin`;
        const bytes = randomBytes(3000);
        const c = await create({ object, length: 3000 });
        assert.equal(c.status, 201, c.text);
        assert.equal((await patch(c.location, 0, bytes.subarray(0, 1000))).status, 204);
        const wrong = await patch(c.location, 0, bytes.subarray(0, 1000));
        assert.equal(wrong.status, 409, `offset 0 after 1000 bytes: ${wrong.status} ${wrong.text}`);
        const ahead = await patch(c.location, 2000, bytes.subarray(2000));
        assert.equal(ahead.status, 409, `offset ahead: ${ahead.status} ${ahead.text}`);
        assert.equal((await headOf(c.location)).headers.get('upload-offset'), '1000');
        assert.equal((await patch(c.location, 1000, bytes.subarray(1000))).status, 204);
        assert.ok((await blobBytes(sOk(await st.from('files').download(object)))).equals(bytes));
      });

      test('a PATCH without application/offset+octet-stream is 415', async () => {
        const object = `tus/${uniq('ct')}.bin`;
        const c = await create({ object, length: 10 });
        assert.equal(c.status, 201, c.text);
        const p = await patch(c.location, 0, Buffer.from('0123456789'), { contentType: 'text/plain' });
        assert.equal(p.status, 415, `${p.status} ${p.text}`);
        assert.equal((await headOf(c.location)).headers.get('upload-offset'), '0');
      });

      test('a PATCH past Upload-Length is refused', async () => {
        const object = `tus/${uniq('over')}.bin`;
        const c = await create({ object, length: 10 });
        assert.equal(c.status, 201, c.text);
        const p = await patch(c.location, 0, Buffer.alloc(20, 1));
        assert.ok(p.status >= 400 && p.status < 500, `20 bytes into a 10-byte upload: ${p.status} ${p.text}`);
        assert.equal((await st.from('files').exists(object)).data, false);
      });

      test('parallel PATCHes at the same offset: one wins, the other is refused; the bytes stay right', async () => {
        const object = `tus/${uniq('par')}.bin`;
        const bytes = randomBytes(200_000);
        const c = await create({ object, length: bytes.length });
        assert.equal(c.status, 201, c.text);
        const half = 100_000;
        const [a, b] = await Promise.all([
          patch(c.location, 0, bytes.subarray(0, half)),
          patch(c.location, 0, bytes.subarray(0, half)),
        ]);
        const statuses = [a.status, b.status].sort();
        const offset = (await headOf(c.location)).headers.get('upload-offset');
        // finish the upload from wherever the server says it is, then check what was stored
        const fin = await patch(c.location, Number(offset), bytes.subarray(Number(offset)));
        const stored = await st.from('files').download(object);
        const got = stored.data ? await blobBytes(stored.data) : null;
        assert.equal(statuses.filter((x) => x === 204).length, 1, `exactly one PATCH at offset 0 may win: ${statuses}; offset after ${offset}; final PATCH ${fin.status}; stored ${got?.length} bytes`);
        assert.ok([409, 423].includes(statuses.find((x) => x !== 204)), `the loser is 409/423: ${statuses}`);
        assert.equal(offset, String(half));
        assert.equal(fin.status, 204);
        assert.ok(got && got.equals(bytes), `stored bytes: ${got?.length} (expected ${bytes.length})`);
      });

      test('parallel PATCHes cannot store more than Upload-Length (nor pass the bucket limit)', async () => {
        const object = `${uniq('burst')}.bin`;
        const c = await create({ bucket: 'limited', object, length: 1000 });
        assert.equal(c.status, 201, c.text);
        const results = await Promise.all([0, 1, 2, 3].map(() => patch(c.location, 0, randomBytes(1000))));
        const wins = results.filter((r) => r.status === 204).length;
        const info = await st.from('limited').info(object);
        if (!info.error) {
          assert.equal(info.data.size, 1000, `object stored with ${info.data.size} bytes for Upload-Length 1000 (${wins} PATCHes won)`);
          const got = await blobBytes(sOk(await st.from('limited').download(object)));
          assert.equal(got.length, 1000, `downloaded ${got.length} bytes from a 1 KB bucket`);
        }
        assert.ok(wins <= 1, `at most one PATCH at offset 0 may win, ${wins} did`);
        // (that exactly one wins is the previous test's business)
      });

      test('DELETE terminates an unfinished upload (termination extension)', async () => {
        const object = `tus/${uniq('term')}.bin`;
        const c = await create({ object, length: 10 });
        assert.equal(c.status, 201, c.text);
        assert.equal((await patch(c.location, 0, Buffer.from('01234'))).status, 204);
        const res = await fetch(c.location, { method: 'DELETE', headers: tusHeaders() });
        await res.text();
        assert.equal(res.status, 204, `DELETE ${c.location}: ${res.status}`);
        assert.equal((await headOf(c.location)).status, 404, 'terminated upload is gone');
        assert.equal((await patch(c.location, 5, Buffer.from('56789'))).status, 404);
        assert.equal((await st.from('files').exists(object)).data, false);
      });

      test('HEAD / PATCH of an unknown upload id is 404', async () => {
        const h = await headOf(`${tusUrl()}/does-not-exist`);
        assert.equal(h.status, 404);
        const p = await patch(`${tusUrl()}/does-not-exist`, 0, Buffer.from('x'));
        assert.equal(p.status, 404, p.text);
      });

      test('creation checks the bucket: missing bucket, size limit, MIME type', async () => {
        const miss = await create({ bucket: 'no-such-bucket', object: 'x.bin', length: 10 });
        assert.ok([400, 404].includes(miss.status), `missing bucket: ${miss.status} ${miss.text}`);
        const big = await create({ bucket: 'limited', object: `${uniq('big')}.bin`, length: 2048 });
        assert.equal(big.status, 413, `Upload-Length over the bucket limit: ${big.status} ${big.text}`);
        const mime = await create({ bucket: 'pngonly', object: `${uniq('m')}.txt`, length: 10, contentType: 'text/plain' });
        assert.ok([400, 415].includes(mime.status), `wrong MIME type: ${mime.status} ${mime.text}`);
        const huge = await create({ object: `${uniq('huge')}.bin`, length: MAX_FILE_SIZE + 1 });
        assert.equal(huge.status, 413, `Upload-Length over the server max: ${huge.status} ${huge.text}`);
      });

      test('creation with bad Upload-Length or Upload-Metadata is 400', async () => {
        const meta = tusMeta({ bucketName: 'files', objectName: `${uniq('bad')}.bin`, contentType: 'text/plain' });
        for (const [what, headers] of [
          ['Upload-Length -1', { 'Upload-Length': '-1', 'Upload-Metadata': meta }],
          ['Upload-Length abc', { 'Upload-Length': 'abc', 'Upload-Metadata': meta }],
          ['no Upload-Length', { 'Upload-Metadata': meta }],
          ['no objectName', { 'Upload-Length': '5', 'Upload-Metadata': tusMeta({ bucketName: 'files', contentType: 'text/plain' }) }],
          ['no bucketName (400, or 404 for the missing bucket)', { 'Upload-Length': '5', 'Upload-Metadata': tusMeta({ objectName: 'x.bin', contentType: 'text/plain' }) }],
          ['.. in objectName', { 'Upload-Length': '5', 'Upload-Metadata': tusMeta({ bucketName: 'files', objectName: '../x.bin', contentType: 'text/plain' }) }],
        ]) {
          const res = await fetch(tusUrl(), { method: 'POST', headers: { ...tusHeaders(), ...headers } });
          await res.text();
          const allowed = what.startsWith('no bucketName') ? [400, 404] : [400];
          assert.ok(allowed.includes(res.status), `${what}: ${res.status}`);
        }
      });

      test('creation without a key is refused', async () => {
        const res = await fetch(tusUrl(), {
          method: 'POST',
          headers: {
            'Tus-Resumable': '1.0.0',
            'Upload-Length': '10',
            'Upload-Metadata': tusMeta({ bucketName: 'files', objectName: 'nokey.bin', contentType: 'text/plain' }),
          },
        });
        await res.text();
        assert.ok([400, 401, 403].includes(res.status), `no key: ${res.status}`);
      });

      test('a request without Tus-Resumable is refused with 412 (TUS 1.0.0; @tus/server does the same)', async () => {
        const noTus = await fetch(tusUrl(), {
          method: 'POST',
          headers: {
            ...authHeaders(srv.serviceKey),
            'Upload-Length': '10',
            'Upload-Metadata': tusMeta({ bucketName: 'files', objectName: 'notus.bin', contentType: 'text/plain' }),
          },
        });
        await noTus.text();
        assert.equal(noTus.status, 412, `no Tus-Resumable: ${noTus.status}`);
        const badTus = await fetch(tusUrl(), {
          method: 'POST',
          headers: {
            ...authHeaders(srv.serviceKey),
            'Tus-Resumable': '0.2.2',
            'Upload-Length': '10',
            'Upload-Metadata': tusMeta({ bucketName: 'files', objectName: 'badtus.bin', contentType: 'text/plain' }),
          },
        });
        await badTus.text();
        assert.equal(badTus.status, 412, `Tus-Resumable 0.2.2: ${badTus.status}`);
      });

      test('an existing object is not overwritten without x-upsert; with x-upsert: true it is', async () => {
        const object = `tus/${uniq('exists')}.txt`;
        sOk(await st.from('files').upload(object, 'original'));
        const c = await create({ object, length: 3 });
        if (c.status === 201) {
          const p = await patch(c.location, 0, Buffer.from('new'));
          assert.equal(p.status, 409, `completing over an existing object: ${p.status} ${p.text}`);
        } else {
          assert.equal(c.status, 409, `creating over an existing object: ${c.status} ${c.text}`);
        }
        assert.equal(await sOk(await st.from('files').download(object)).text(), 'original');
        const u = await create({ object, length: 3, headers: { 'x-upsert': 'true' } });
        assert.equal(u.status, 201, u.text);
        assert.equal((await patch(u.location, 0, Buffer.from('new'))).status, 204);
        assert.equal(await sOk(await st.from('files').download(object)).text(), 'new');
      });
    });
  });

  // =============================================================================== policies
  describe(`storage [${name}]: access control with policies`, () => {
    let srv;
    let st; // service
    const POLICIES = `
CREATE POLICY "own uploads" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'avatars' AND owner = auth.uid());
CREATE POLICY "own reads" ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'avatars' AND owner = auth.uid());
CREATE POLICY "folder" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "folder reads" ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "notes insert" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'notes' AND owner = auth.uid());
CREATE POLICY "notes select" ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'notes' AND owner = auth.uid());
CREATE POLICY "notes update" ON storage.objects FOR UPDATE TO authenticated
  USING (bucket_id = 'notes' AND owner = auth.uid()) WITH CHECK (bucket_id = 'notes' AND owner = auth.uid());
CREATE POLICY "notes delete" ON storage.objects FOR DELETE TO authenticated
  USING (bucket_id = 'notes' AND owner = auth.uid());
CREATE POLICY "png uploads" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'pngs' AND storage.extension(name) = 'png');
CREATE POLICY "pub- files readable" ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'pngs' AND storage.filename(name) LIKE 'pub-%');
CREATE POLICY "signed-in readers" ON storage.objects FOR SELECT
  USING (bucket_id = 'shared' AND auth.role() = 'authenticated');
CREATE POLICY "see public buckets" ON storage.buckets FOR SELECT TO authenticated
  USING (public = true);
CREATE POLICY "make user buckets" ON storage.buckets FOR INSERT TO authenticated
  WITH CHECK (id LIKE 'user-%' AND public = true);
`;
    let alice;
    let bob;

    before(async () => {
      const env = await makeEnv();
      srv = await startServer({ migrations: { '0001_storage_policies.sql': POLICIES }, env: { ...env, ...HIGH_RATE_LIMITS } });
      st = srv.client('service').storage;
      sOk(await st.createBucket('avatars', { public: false }));
      sOk(await st.createBucket('docs', { public: false }));
      sOk(await st.createBucket('closed', { public: false }));
      sOk(await st.createBucket('open', { public: true }));
      sOk(await st.createBucket('notes', { public: false }));
      sOk(await st.createBucket('pngs', { public: false }));
      sOk(await st.createBucket('shared', { public: false }));
      sOk(await st.from('shared').upload('team/plan.txt', 'the plan'));
      sOk(await st.from('closed').upload('secret.txt', 'top secret'));
      sOk(await st.from('open').upload('hello.txt', 'hello public'));
      alice = await signUpUser(srv);
      bob = await signUpUser(srv);
    });
    after(async () => {
      await srv?.stop();
    });

    test('closed by default: anon and authenticated cannot upload to a bucket without policies; nothing is stored', async () => {
      for (const [who, client] of [
        ['anon', srv.client('anon')],
        ['alice', alice.client],
      ]) {
        const p = `${who}-${uniq('x')}.txt`;
        const res = await client.storage.from('closed').upload(p, 'nope');
        const e = sFails(res, [403, 400, 401], `${who} upload to closed`);
        assert.match(e.message, /row-level security|policy|denied|unauthori[sz]ed|permission/i, `${who}: ${e.message}`);
        assert.equal((await st.from('closed').exists(p)).data, false, `${who}'s refused upload was stored`);
      }
      assert.deepEqual(sOk(await st.from('closed').list()).map((o) => o.name), ['secret.txt']);
    });

    test('closed by default: anon and authenticated see no objects and cannot read, sign, move or delete', async () => {
      for (const [who, client] of [
        ['anon', srv.client('anon')],
        ['alice', alice.client],
      ]) {
        const list = await client.storage.from('closed').list();
        if (list.error) sFails(list, [400, 403, 404], `${who} list closed`);
        else assert.deepEqual(list.data, [], `${who} must see nothing in closed: ${showRes(list)}`);
        const dl = await client.storage.from('closed').download('secret.txt');
        sFails(dl, [400, 403, 404], `${who} download closed`);
        sFails(await client.storage.from('closed').info('secret.txt'), [400, 403, 404], `${who} info closed`);
        sFails(await client.storage.from('closed').createSignedUrl('secret.txt', 60), [400, 403, 404], `${who} sign closed`);
        const mv = await client.storage.from('closed').move('secret.txt', 'stolen.txt');
        assert.ok(mv.error, `${who} move in closed must fail: ${showRes(mv)}`);
        const rm = await client.storage.from('closed').remove(['secret.txt']);
        if (!rm.error) assert.deepEqual(rm.data, [], `${who} remove must remove nothing: ${showRes(rm)}`);
        const up = await client.storage.from('closed').upload('secret.txt', 'overwritten', { upsert: true });
        assert.ok(up.error, `${who} upsert in closed must fail: ${showRes(up)}`);
      }
      assert.equal(await sOk(await st.from('closed').download('secret.txt')).text(), 'top secret');
      assert.equal((await st.from('closed').exists('stolen.txt')).data, false);
    });

    test('closed by default: anon and authenticated cannot create, update or delete buckets', async () => {
      for (const [who, client] of [
        ['anon', srv.client('anon')],
        ['alice', alice.client],
      ]) {
        const id = uniq(`${who}-bkt`);
        sFails(await client.storage.createBucket(id), [400, 401, 403], `${who} createBucket`);
        sFails(await st.getBucket(id), 404, `${who}'s bucket must not exist`);
        const upd = await client.storage.updateBucket('closed', { public: true });
        assert.ok(upd.error, `${who} updateBucket must fail: ${showRes(upd)}`);
        const del = await client.storage.deleteBucket('open');
        assert.ok(del.error, `${who} deleteBucket must fail: ${showRes(del)}`);
        const emp = await client.storage.emptyBucket('closed');
        assert.ok(emp.error, `${who} emptyBucket must fail: ${showRes(emp)}`);
      }
      assert.equal(sOk(await st.getBucket('closed')).public, false);
      assert.equal(sOk(await st.getBucket('open')).id, 'open');
      assert.equal(await sOk(await st.from('closed').download('secret.txt')).text(), 'top secret');
    });

    test('owner policies: a user uploads and reads their own file; the other user cannot read, list, sign or overwrite it', async () => {
      const p = `${uniq('alice')}.txt`;
      const up = sOk(await alice.client.storage.from('avatars').upload(p, "alice's avatar", { contentType: 'text/plain' }));
      assert.equal(up.fullPath, `avatars/${p}`);
      assert.equal(await sOk(await alice.client.storage.from('avatars').download(p)).text(), "alice's avatar");
      assert.equal(sOk(await alice.client.storage.from('avatars').info(p)).size, 14);
      assert.ok(sOk(await alice.client.storage.from('avatars').list()).some((o) => o.name === p), 'alice lists her file');
      const { signedUrl } = sOk(await alice.client.storage.from('avatars').createSignedUrl(p, 60));
      assert.equal(await (await fetch(signedUrl)).text(), "alice's avatar");

      // bob
      sFails(await bob.client.storage.from('avatars').download(p), [400, 403, 404], 'bob downloads alice');
      sFails(await bob.client.storage.from('avatars').info(p), [400, 403, 404], 'bob info alice');
      assert.equal((await bob.client.storage.from('avatars').exists(p)).data, false);
      sFails(await bob.client.storage.from('avatars').createSignedUrl(p, 60), [400, 403, 404], 'bob signs alice');
      const bobList = sOk(await bob.client.storage.from('avatars').list());
      assert.ok(!bobList.some((o) => o.name === p), `bob must not list alice's file: ${JSON.stringify(bobList)}`);
      const over = await bob.client.storage.from('avatars').upload(p, 'bob was here', { upsert: true });
      assert.ok(over.error, `bob must not overwrite alice's file: ${showRes(over)}`);
      const plain = await bob.client.storage.from('avatars').upload(p, 'bob again');
      assert.ok(plain.error, `bob must not replace alice's file: ${showRes(plain)}`);
      const rm = await bob.client.storage.from('avatars').remove([p]);
      if (!rm.error) assert.deepEqual(rm.data, [], `bob removed something: ${showRes(rm)}`);
      const mv = await bob.client.storage.from('avatars').move(p, `${p}.bob`);
      assert.ok(mv.error, `bob must not move alice's file: ${showRes(mv)}`);
      // anon
      sFails(await srv.client('anon').storage.from('avatars').download(p), [400, 403, 404], 'anon downloads alice');
      sFails(await srv.client('anon').storage.from('avatars').upload(`${uniq('anon')}.txt`, 'x'), [400, 401, 403], 'anon uploads to avatars');

      assert.equal(await sOk(await st.from('avatars').download(p)).text(), "alice's avatar", 'alice file unchanged');

      // bob has his own file, which alice in turn cannot see
      const q = `${uniq('bob')}.txt`;
      sOk(await bob.client.storage.from('avatars').upload(q, "bob's avatar"));
      assert.equal(await sOk(await bob.client.storage.from('avatars').download(q)).text(), "bob's avatar");
      sFails(await alice.client.storage.from('avatars').download(q), [400, 403, 404], 'alice downloads bob');
      const aliceList = sOk(await alice.client.storage.from('avatars').list()).map((o) => o.name);
      assert.ok(aliceList.includes(p) && !aliceList.includes(q), `alice sees only her own: ${aliceList}`);
    });

    test('without UPDATE / DELETE policies the owner can neither replace nor remove their own file', async () => {
      const p = `${uniq('noupd')}.txt`;
      sOk(await alice.client.storage.from('avatars').upload(p, 'v1'));
      const up = await alice.client.storage.from('avatars').upload(p, 'v2', { upsert: true });
      assert.ok(up.error, `upsert needs an UPDATE policy: ${showRes(up)}`);
      const upd = await alice.client.storage.from('avatars').update(p, 'v3');
      assert.ok(upd.error, `update needs an UPDATE policy: ${showRes(upd)}`);
      const rm = await alice.client.storage.from('avatars').remove([p]);
      if (!rm.error) assert.deepEqual(rm.data, [], `remove needs a DELETE policy: ${showRes(rm)}`);
      const mv = await alice.client.storage.from('avatars').move(p, `${p}.moved`);
      assert.ok(mv.error, `move needs an UPDATE policy: ${showRes(mv)}`);
      assert.equal(await sOk(await st.from('avatars').download(p)).text(), 'v1');
      assert.equal((await st.from('avatars').exists(`${p}.moved`)).data, false);
    });

    test('full owner policies (notes): the owner upserts, updates, moves, copies and removes; the other user cannot', async () => {
      const n = `${uniq('note')}.txt`;
      sOk(await alice.client.storage.from('notes').upload(n, 'v1'));
      sOk(await alice.client.storage.from('notes').upload(n, 'v2', { upsert: true }), 'owner upsert');
      assert.equal(await sOk(await alice.client.storage.from('notes').download(n)).text(), 'v2');
      sOk(await alice.client.storage.from('notes').update(n, 'v3'), 'owner update');
      assert.equal(await sOk(await alice.client.storage.from('notes').download(n)).text(), 'v3');

      // bob: nothing of alice's
      assert.ok((await bob.client.storage.from('notes').upload(n, 'bob', { upsert: true })).error, 'bob upsert');
      assert.ok((await bob.client.storage.from('notes').update(n, 'bob')).error, 'bob update');
      assert.ok((await bob.client.storage.from('notes').move(n, `${n}.bob`)).error, 'bob move');
      assert.ok((await bob.client.storage.from('notes').copy(n, `${n}.bobcopy`)).error, 'bob copy (needs SELECT on the source)');
      const brm = await bob.client.storage.from('notes').remove([n]);
      if (!brm.error) assert.deepEqual(brm.data, [], `bob removed alice's note: ${showRes(brm)}`);
      assert.equal(await sOk(await st.from('notes').download(n)).text(), 'v3');
      assert.equal((await st.from('notes').exists(`${n}.bob`)).data, false);
      assert.equal((await st.from('notes').exists(`${n}.bobcopy`)).data, false);

      // alice: move, copy (the copy is hers), remove
      const m = `${uniq('moved')}.txt`;
      sOk(await alice.client.storage.from('notes').move(n, m), 'owner move');
      sFails(await alice.client.storage.from('notes').download(n), [400, 404], 'moved away');
      const c = `${uniq('copy')}.txt`;
      sOk(await alice.client.storage.from('notes').copy(m, c), 'owner copy');
      assert.equal(await sOk(await alice.client.storage.from('notes').download(c)).text(), 'v3');
      sFails(await bob.client.storage.from('notes').download(c), [400, 403, 404], "bob reads alice's copy");
      const rm = sOk(await alice.client.storage.from('notes').remove([m, c]));
      assert.deepEqual(rm.map((o) => o.name).sort(), [m, c].sort());
      assert.equal((await st.from('notes').exists(m)).data, false);
      assert.equal((await st.from('notes').exists(c)).data, false);
    });

    test('bucket policies: authenticated users see public buckets only and may create user-* public buckets', async () => {
      const seen = sOk(await alice.client.storage.listBuckets()).map((b) => b.id);
      assert.ok(seen.includes('open'), `alice sees the public bucket: ${seen}`);
      for (const hidden of ['avatars', 'docs', 'closed', 'notes']) assert.ok(!seen.includes(hidden), `alice sees private ${hidden}: ${seen}`);
      assert.equal(sOk(await alice.client.storage.getBucket('open')).public, true);
      sFails(await alice.client.storage.getBucket('closed'), [400, 404], 'getBucket of a hidden bucket');
      const anon = await srv.client('anon').storage.listBuckets();
      if (!anon.error) assert.deepEqual(anon.data, [], `anon has no bucket policy: ${showRes(anon)}`);

      const mine = `user-${randomBytes(4).toString('hex')}`;
      assert.deepEqual(sOk(await alice.client.storage.createBucket(mine, { public: true })), { name: mine });
      assert.equal(sOk(await st.getBucket(mine)).public, true);
      assert.ok(sOk(await alice.client.storage.listBuckets()).some((b) => b.id === mine));
      sFails(await alice.client.storage.createBucket(`user-${randomBytes(4).toString('hex')}`, { public: false }), [400, 403], 'private user bucket fails WITH CHECK');
      const other = `team-${randomBytes(4).toString('hex')}`;
      sFails(await alice.client.storage.createBucket(other, { public: true }), [400, 403], 'bucket name outside user-%');
      sFails(await st.getBucket(other), 404, 'refused bucket must not exist');
      // no UPDATE/DELETE policy on buckets
      assert.ok((await alice.client.storage.updateBucket(mine, { public: false })).error, 'alice updates her bucket without a policy');
      assert.ok((await alice.client.storage.deleteBucket(mine)).error, 'alice deletes her bucket without a policy');
      assert.equal(sOk(await st.getBucket(mine)).public, true);
    });

    test('a user cannot upload where no INSERT policy allows it (docs root, a public bucket)', async () => {
      const res = await alice.client.storage.from('docs').upload(`${uniq('x')}.txt`, 'no folder');
      sFails(res, [400, 403], 'alice upload to docs root (folder policy)');
      const pub = await alice.client.storage.from('open').upload(`${uniq('x')}.txt`, 'x');
      sFails(pub, [400, 403], 'alice upload to a public bucket without INSERT policy');
    });

    test("folder policy: storage.foldername(name)[1] = auth.uid() allows '<uid>/x.txt' only", async () => {
      const uid = alice.user.id;
      const own = `${uid}/${uniq('note')}.txt`;
      sOk(await alice.client.storage.from('docs').upload(own, 'in my folder'));
      assert.equal(await sOk(await alice.client.storage.from('docs').download(own)).text(), 'in my folder');
      const deep = `${uid}/nested/deeper/${uniq('n')}.txt`;
      sOk(await alice.client.storage.from('docs').upload(deep, 'deep'));

      const other = `other/${uniq('x')}.txt`;
      sFails(await alice.client.storage.from('docs').upload(other, 'not mine'), [400, 403], 'other folder');
      const bobs = `${bob.user.id}/${uniq('x')}.txt`;
      sFails(await alice.client.storage.from('docs').upload(bobs, 'into bob'), [400, 403], "bob's folder");
      const rootFile = `${uniq('root')}.txt`;
      sFails(await alice.client.storage.from('docs').upload(rootFile, 'root'), [400, 403], 'no folder');
      const prefixTrick = `${uid}x/${uniq('x')}.txt`;
      sFails(await alice.client.storage.from('docs').upload(prefixTrick, 'prefix trick'), [400, 403], 'uid-prefixed folder');

      for (const p of [other, bobs, rootFile, prefixTrick]) {
        assert.equal((await st.from('docs').exists(p)).data, false, `${p} must not be stored`);
      }
      assert.deepEqual(sOk(await st.from('docs').list('other')), []);
      assert.deepEqual(sOk(await st.from('docs').list(uid)).map((o) => o.name).sort(), [own.split('/')[1], 'nested'].sort());

      // bob can't read alice's folder (SELECT policy is per folder too)
      sFails(await bob.client.storage.from('docs').download(own), [400, 403, 404], 'bob reads alice folder');
      const bl = sOk(await bob.client.storage.from('docs').list(uid));
      assert.deepEqual(bl, [], `bob lists alice's folder: ${JSON.stringify(bl)}`);
    });

    test('storage.extension() and storage.filename() in policies', async () => {
      const dir = uniq('imgs');
      sOk(await alice.client.storage.from('pngs').upload(`${dir}/pub-a.png`, makePng(2, 2), { contentType: 'image/png' }));
      sOk(await alice.client.storage.from('pngs').upload(`${dir}/secret-b.png`, makePng(2, 2), { contentType: 'image/png' }));
      sFails(await alice.client.storage.from('pngs').upload(`${dir}/pub-c.txt`, 'text'), [400, 403], 'extension txt');
      sFails(await alice.client.storage.from('pngs').upload(`${dir}/pub-d.png.txt`, 'text'), [400, 403], 'extension of a double extension');
      assert.equal((await st.from('pngs').exists(`${dir}/pub-c.txt`)).data, false);
      // SELECT by file name: pub-* readable by any signed-in user, the rest by nobody
      assert.ok((await blobBytes(sOk(await bob.client.storage.from('pngs').download(`${dir}/pub-a.png`)))).equals(makePng(2, 2)));
      sFails(await alice.client.storage.from('pngs').download(`${dir}/secret-b.png`), [400, 403, 404], 'filename not pub-*');
      assert.deepEqual(sOk(await bob.client.storage.from('pngs').list(dir)).map((o) => o.name), ['pub-a.png']);
    });

    test("auth.role() = 'authenticated' in a policy: signed-in users read, anon does not", async () => {
      assert.equal(await sOk(await alice.client.storage.from('shared').download('team/plan.txt')).text(), 'the plan');
      assert.equal(await sOk(await bob.client.storage.from('shared').download('team/plan.txt')).text(), 'the plan');
      sFails(await srv.client('anon').storage.from('shared').download('team/plan.txt'), [400, 403, 404], 'anon');
      const anonList = await srv.client('anon').storage.from('shared').list('team');
      if (!anonList.error) assert.deepEqual(anonList.data, []);
    });

    test('an expired or forged user token is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = srv.mintJwt({ role: 'authenticated', aud: 'authenticated', sub: alice.user.id, iat: now - 7200, exp: now - 3600 });
      const r = await sfetch(srv, '/object/shared/team/plan.txt', { key: srv.anonKey, token: expired });
      assert.ok([400, 401, 403].includes(r.status), `expired user token: ${showHttp(r)}`);
      assert.ok(!r.text.includes('the plan'));
      const parts = alice.session.access_token.split('.');
      const forgedClaims = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(parts[1], 'base64url')), role: 'service_role' })).toString('base64url');
      const forged = `${parts[0]}.${forgedClaims}.${parts[2]}`;
      const f = await sfetch(srv, '/object/closed/secret.txt', { key: srv.anonKey, token: forged });
      assert.ok([400, 401, 403].includes(f.status), `claims changed under the old signature: ${showHttp(f)}`);
      assert.ok(!f.text.includes('top secret'));
    });

    test('a signed upload URL needs INSERT rights at creation', async () => {
      sFails(await bob.client.storage.from('docs').createSignedUploadUrl(`${alice.user.id}/${uniq('s')}.txt`), [400, 403], 'bob signs upload into alice folder');
      const ok = sOk(await alice.client.storage.from('docs').createSignedUploadUrl(`${alice.user.id}/${uniq('s')}.txt`));
      assert.equal(typeof ok.token, 'string');
    });

    test('public bucket: anyone downloads through the public URL; the authenticated routes still need policies', async () => {
      const { publicUrl } = srv.client('anon').storage.from('open').getPublicUrl('hello.txt').data;
      const r = await fetch(publicUrl);
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'hello public');
      const r2 = await fetch(publicUrl, { headers: { Authorization: `Bearer ${bob.session.access_token}`, apikey: srv.anonKey } });
      assert.equal(r2.status, 200);
      assert.equal(await r2.text(), 'hello public');
      sFails(await srv.client('anon').storage.from('open').upload(`${uniq('a')}.txt`, 'x'), [400, 401, 403], 'anon upload to public bucket');
    });

    test('service_role bypasses every policy', async () => {
      const list = sOk(await st.from('avatars').list());
      assert.ok(list.length >= 2, `service sees every avatar: ${JSON.stringify(list)}`);
      const p = `${alice.user.id}/${uniq('svc')}.txt`;
      sOk(await st.from('docs').upload(p, 'by service'));
      sOk(await st.from('docs').upload('anywhere/at/all.txt', 'by service', { upsert: true }));
      assert.equal(await sOk(await st.from('docs').download('anywhere/at/all.txt')).text(), 'by service');
      // alice can read service's file in her folder (SELECT policy looks at the folder, not the owner)
      assert.equal(await sOk(await alice.client.storage.from('docs').download(p)).text(), 'by service');
      sOk(await st.from('closed').move('secret.txt', 'moved-secret.txt'));
      sOk(await st.from('closed').move('moved-secret.txt', 'secret.txt'));
      assert.equal(await sOk(await st.from('closed').download('secret.txt')).text(), 'top secret');
    });

    test('a token signed with another secret is refused', async () => {
      const forged = (await import('./server.js')).signJwt(
        { role: 'service_role', iss: 'outpost', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 },
        'some-other-secret-that-is-long-enough-1234',
      );
      const r = await sfetch(srv, '/object/closed/secret.txt', { key: forged });
      assert.ok([400, 401, 403].includes(r.status), `forged service key: ${showHttp(r)}`);
      assert.ok(!r.text.includes('top secret'));
      const b = await sfetch(srv, '/bucket', { key: forged });
      assert.ok([400, 401, 403].includes(b.status), `forged key lists buckets: ${showHttp(b)}`);
    });

    test('resumable upload by anon into a closed bucket never becomes an object', async () => {
      const object = `${uniq('tus-anon')}.bin`;
      const url = `${srv.url}/storage/v1/upload/resumable`;
      const c = await fetch(url, {
        method: 'POST',
        headers: {
          ...authHeaders(srv.anonKey),
          'Tus-Resumable': '1.0.0',
          'Upload-Length': '5',
          'Upload-Metadata': tusMeta({ bucketName: 'closed', objectName: object, contentType: 'text/plain' }),
        },
      });
      const ctext = await c.text();
      if (c.status === 201) {
        const loc = new URL(c.headers.get('location'), url).toString();
        const p = await fetch(loc, {
          method: 'PATCH',
          headers: { ...authHeaders(srv.anonKey), 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
          body: Buffer.from('hello'),
        });
        await p.text();
        assert.ok(p.status >= 400, `anon completed a TUS upload into closed: ${p.status}`);
      } else {
        assert.ok([400, 401, 403].includes(c.status), `anon TUS create into closed: ${c.status} ${ctext}`);
      }
      assert.equal((await st.from('closed').exists(object)).data, false);
    });

    test('resumable upload by a user follows the folder policy', async () => {
      const url = `${srv.url}/storage/v1/upload/resumable`;
      const token = alice.session.access_token;
      const h = { apikey: srv.anonKey, Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' };
      const good = `${alice.user.id}/${uniq('tus')}.bin`;
      const c = await fetch(url, {
        method: 'POST',
        headers: { ...h, 'Upload-Length': '5', 'Upload-Metadata': tusMeta({ bucketName: 'docs', objectName: good, contentType: 'text/plain' }) },
      });
      assert.equal(c.status, 201, await c.text());
      const loc = new URL(c.headers.get('location'), url).toString();
      const p = await fetch(loc, {
        method: 'PATCH',
        headers: { ...h, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: Buffer.from('hello'),
      });
      assert.equal(p.status, 204, await p.text());
      assert.equal(await sOk(await alice.client.storage.from('docs').download(good)).text(), 'hello');
      // bob cannot continue alice's upload
      const c2 = await fetch(url, {
        method: 'POST',
        headers: { ...h, 'Upload-Length': '5', 'Upload-Metadata': tusMeta({ bucketName: 'docs', objectName: `${alice.user.id}/${uniq('t2')}.bin`, contentType: 'text/plain' }) },
      });
      assert.equal(c2.status, 201);
      await c2.text();
      const loc2 = new URL(c2.headers.get('location'), url).toString();
      const pb = await fetch(loc2, {
        method: 'PATCH',
        headers: { apikey: srv.anonKey, Authorization: `Bearer ${bob.session.access_token}`, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: Buffer.from('bobby'),
      });
      await pb.text();
      assert.ok(pb.status >= 400 && pb.status < 500, `bob patched alice's upload: ${pb.status}`);
      // into another folder: refused at creation or at completion
      const bad = `other/${uniq('tus')}.bin`;
      const c3 = await fetch(url, {
        method: 'POST',
        headers: { ...h, 'Upload-Length': '5', 'Upload-Metadata': tusMeta({ bucketName: 'docs', objectName: bad, contentType: 'text/plain' }) },
      });
      const c3text = await c3.text();
      if (c3.status === 201) {
        const loc3 = new URL(c3.headers.get('location'), url).toString();
        const p3 = await fetch(loc3, {
          method: 'PATCH',
          headers: { ...h, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
          body: Buffer.from('hello'),
        });
        await p3.text();
        assert.ok(p3.status >= 400, `TUS into another folder completed: ${p3.status}`);
      } else {
        assert.ok([400, 403].includes(c3.status), `${c3.status} ${c3text}`);
      }
      assert.equal((await st.from('docs').exists(bad)).data, false);
    });
  });
}

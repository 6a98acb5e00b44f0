// Writes: insert, upsert, update, delete, return=representation, counts, rollback, maxAffected,
// constraint errors, and atomicity (a failed write writes nothing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { BLOG_SCHEMA } from '../lib/fixtures.js';
import { ok, fails, show } from '../lib/assert.js';

const ITEMS = `
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  sku TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  qty INTEGER NOT NULL DEFAULT 0,
  note TEXT DEFAULT 'none',
  price REAL,
  active BOOLEAN NOT NULL DEFAULT 1,
  attrs JSON,
  CHECK (qty >= 0)
);
`;
const SEED = `INSERT INTO authors (id, name, country) VALUES (1, 'Ada', 'UK'), (2, 'Brian', 'US');`;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let srv;
let db;

before(async () => {
  srv = await startServer({
    migrations: { '0001_blog.sql': BLOG_SCHEMA, '0002_items.sql': ITEMS, '0003_seed.sql': SEED },
  });
  db = srv.client('service');
});
after(async () => {
  await srv?.stop();
});

/** Items whose sku starts with prefix, ordered by sku, without ids. */
async function itemsLike(prefix, cols = 'sku,name,qty,note,price,active,attrs') {
  const res = await db.from('items').select(cols).like('sku', `${prefix}%`).order('sku');
  return ok(res, 200);
}

const defaults = { qty: 0, note: 'none', price: null, active: true, attrs: null };

// ---------------------------------------------------------------- insert

test('insert without select: 201, no body, row written with column defaults', async () => {
  const res = await db.from('items').insert({ sku: 'ins-1', name: 'One' });
  assert.equal(res.error, null, show(res));
  assert.equal(res.status, 201, show(res));
  assert.equal(res.data, null, show(res));
  assert.deepEqual(await itemsLike('ins-1'), [{ sku: 'ins-1', name: 'One', ...defaults }]);
});

test('insert().select() returns the inserted row including defaults and the generated id', async () => {
  const res = await db.from('items').insert({ sku: 'ins-2', name: 'Two', qty: 3 }).select();
  const data = ok(res, 201);
  assert.equal(data.length, 1, show(res));
  const [row] = data;
  assert.equal(typeof row.id, 'number');
  assert.ok(Number.isInteger(row.id) && row.id > 0);
  assert.deepEqual(row, { id: row.id, sku: 'ins-2', name: 'Two', ...defaults, qty: 3 });
});

test('insert().select(cols).single() returns one object with only those columns', async () => {
  const data = ok(await db.from('items').insert({ sku: 'ins-3', name: 'Three' }).select('sku,qty').single(), 201);
  assert.deepEqual(data, { sku: 'ins-3', qty: 0 });
});

test('insert JSON, boolean and real values round-trip exactly', async () => {
  const attrs = { x: [1, 2.5, 'three'], y: { z: null, t: true }, s: 'quote " and \\ backslash' };
  const data = ok(
    await db
      .from('items')
      .insert({ sku: 'ins-4', name: 'Four', active: false, price: 9.99, attrs })
      .select('sku,active,price,attrs')
      .single(),
  );
  assert.deepEqual(data, { sku: 'ins-4', active: false, price: 9.99, attrs });
  assert.deepEqual(await itemsLike('ins-4', 'active,price,attrs'), [{ active: false, price: 9.99, attrs }]);
});

test('insert an array: columns= is the union of keys; missing keys become NULL (defaultToNull)', async () => {
  const res = await db
    .from('items')
    .insert([
      { sku: 'arr-a', name: 'A', note: 'x' },
      { sku: 'arr-b', name: 'B' },
    ])
    .select('sku,name,note,qty');
  const data = ok(res, 201);
  assert.deepEqual(
    [...data].sort((a, b) => a.sku.localeCompare(b.sku)),
    [
      { sku: 'arr-a', name: 'A', note: 'x', qty: 0 },
      { sku: 'arr-b', name: 'B', note: null, qty: 0 },
    ],
  );
  assert.deepEqual(await itemsLike('arr-', 'sku,note,qty'), [
    { sku: 'arr-a', note: 'x', qty: 0 },
    { sku: 'arr-b', note: null, qty: 0 },
  ]);
});

test('insert an array with defaultToNull:false uses column defaults for missing keys', async () => {
  const res = await db
    .from('items')
    .insert([{ sku: 'dtn-a', name: 'A', note: 'x' }, { sku: 'dtn-b', name: 'B' }], { defaultToNull: false })
    .select('sku,note');
  ok(res, 201);
  assert.deepEqual(await itemsLike('dtn-', 'sku,note'), [
    { sku: 'dtn-a', note: 'x' },
    { sku: 'dtn-b', note: 'none' },
  ]);
});

test('insert with count exact reports the number of inserted rows', async () => {
  const res = await db
    .from('items')
    .insert([{ sku: 'cnt-a', name: 'A' }, { sku: 'cnt-b', name: 'B' }, { sku: 'cnt-c', name: 'C' }], {
      count: 'exact',
    });
  ok(res, 201);
  assert.equal(res.count, 3, show(res));
});

test('insert uses SQL defaults now() and gen_random_uuid()', async () => {
  const before = Date.now();
  const res = await db
    .from('posts')
    .insert([{ title: 'def-1', author_id: 1 }, { title: 'def-2', author_id: 2 }])
    .select('*');
  const data = ok(res, 201);
  assert.equal(data.length, 2, show(res));
  for (const row of data) {
    assert.equal(row.published, false);
    assert.equal(row.meta, null);
    assert.equal(row.score, null);
    assert.match(row.uid, UUID_RE);
    assert.equal(typeof row.created_at, 'string');
    const t = Date.parse(row.created_at);
    assert.ok(!Number.isNaN(t), `created_at not ISO 8601: ${row.created_at}`);
    assert.ok(Math.abs(t - before) < 5 * 60_000, `created_at ${row.created_at} is not now`);
  }
  assert.notEqual(data[0].uid, data[1].uid);
});

test('insert().select() can embed related rows', async () => {
  const data = ok(
    await db.from('posts').insert({ title: 'emb-1', author_id: 2 }).select('title,authors(name)').single(),
    201,
  );
  assert.deepEqual(data, { title: 'emb-1', authors: { name: 'Brian' } });
});

// ---------------------------------------------------------------- upsert

test('upsert merges on the primary key by default', async () => {
  ok(await db.from('items').insert({ id: 1000, sku: 'up-1', name: 'One', qty: 1, note: 'keep' }));
  const res = await db.from('items').upsert({ id: 1000, sku: 'up-1', name: 'Uno', qty: 2 }).select('id,sku,name,qty,note');
  const data = ok(res, [200, 201]);
  assert.deepEqual(data, [{ id: 1000, sku: 'up-1', name: 'Uno', qty: 2, note: 'keep' }]);
  assert.deepEqual(await itemsLike('up-1', 'id,name,qty,note'), [{ id: 1000, name: 'Uno', qty: 2, note: 'keep' }]);
});

test('upsert with onConflict on a UNIQUE column updates that row (id unchanged)', async () => {
  ok(await db.from('items').insert({ id: 1001, sku: 'up-2', name: 'Two' }));
  const res = await db
    .from('items')
    .upsert({ sku: 'up-2', name: 'Deux', qty: 5 }, { onConflict: 'sku' })
    .select('id,sku,name,qty');
  assert.deepEqual(ok(res, [200, 201]), [{ id: 1001, sku: 'up-2', name: 'Deux', qty: 5 }]);
  assert.deepEqual(await itemsLike('up-2', 'id,name,qty'), [{ id: 1001, name: 'Deux', qty: 5 }]);
});

test('upsert an array mixing existing and new rows', async () => {
  ok(await db.from('items').insert({ sku: 'up-3', name: 'Three', qty: 3 }));
  const res = await db
    .from('items')
    .upsert([{ sku: 'up-3', name: 'Drei', qty: 30 }, { sku: 'up-4', name: 'Vier', qty: 4 }], { onConflict: 'sku' })
    .select('sku,name,qty');
  const data = ok(res, [200, 201]);
  assert.deepEqual(
    [...data].sort((a, b) => a.sku.localeCompare(b.sku)),
    [{ sku: 'up-3', name: 'Drei', qty: 30 }, { sku: 'up-4', name: 'Vier', qty: 4 }],
  );
  assert.deepEqual(await itemsLike('up-', 'sku,name').then((r) => r.filter((x) => ['up-3', 'up-4'].includes(x.sku))), [
    { sku: 'up-3', name: 'Drei' },
    { sku: 'up-4', name: 'Vier' },
  ]);
});

test('upsert with ignoreDuplicates leaves existing rows alone and returns only inserted ones', async () => {
  ok(await db.from('items').insert({ sku: 'up-5', name: 'Five' }));
  const res = await db
    .from('items')
    .upsert([{ sku: 'up-5', name: 'CHANGED' }, { sku: 'up-6', name: 'Six' }], { onConflict: 'sku', ignoreDuplicates: true })
    .select('sku,name');
  assert.deepEqual(ok(res, [200, 201]), [{ sku: 'up-6', name: 'Six' }]);
  assert.deepEqual(
    (await itemsLike('up-', 'sku,name')).filter((x) => ['up-5', 'up-6'].includes(x.sku)),
    [{ sku: 'up-5', name: 'Five' }, { sku: 'up-6', name: 'Six' }],
  );
});

// ---------------------------------------------------------------- update

test('update with filters and select returns exactly the updated rows', async () => {
  ok(await db.from('items').insert([{ sku: 'upd-1', name: 'a', qty: 1 }, { sku: 'upd-2', name: 'b', qty: 1 }, { sku: 'upd-3', name: 'c', qty: 1 }]));
  const res = await db.from('items').update({ qty: 10, note: 'bumped' }).in('sku', ['upd-1', 'upd-2']).select('sku,qty,note');
  const data = ok(res, 200);
  assert.deepEqual(
    [...data].sort((a, b) => a.sku.localeCompare(b.sku)),
    [{ sku: 'upd-1', qty: 10, note: 'bumped' }, { sku: 'upd-2', qty: 10, note: 'bumped' }],
  );
  assert.deepEqual(await itemsLike('upd-', 'sku,qty,note'), [
    { sku: 'upd-1', qty: 10, note: 'bumped' },
    { sku: 'upd-2', qty: 10, note: 'bumped' },
    { sku: 'upd-3', qty: 1, note: 'none' },
  ]);
});

test('update without select answers 204 with no data', async () => {
  ok(await db.from('items').insert({ sku: 'upd-4', name: 'd' }));
  const res = await db.from('items').update({ name: 'dd' }).eq('sku', 'upd-4');
  assert.equal(res.error, null, show(res));
  assert.equal(res.status, 204, show(res));
  assert.equal(res.data, null);
  assert.deepEqual(await itemsLike('upd-4', 'name'), [{ name: 'dd' }]);
});

test('update with count exact reports affected rows', async () => {
  ok(await db.from('items').insert([{ sku: 'updc-1', name: 'a' }, { sku: 'updc-2', name: 'b' }]));
  const res = await db.from('items').update({ qty: 7 }, { count: 'exact' }).like('sku', 'updc-%');
  ok(res);
  assert.equal(res.count, 2, show(res));
});

test('update matching nothing returns [] with select', async () => {
  const res = await db.from('items').update({ qty: 1 }).eq('sku', 'does-not-exist').select();
  assert.deepEqual(ok(res, 200), []);
});

test('update JSON and boolean columns, and set a column to NULL', async () => {
  ok(await db.from('items').insert({ sku: 'updj-1', name: 'j', attrs: { a: 1 }, price: 1.5 }));
  const data = ok(
    await db.from('items').update({ attrs: { b: [true, null] }, active: false, price: null }).eq('sku', 'updj-1').select('attrs,active,price').single(),
  );
  assert.deepEqual(data, { attrs: { b: [true, null] }, active: false, price: null });
});

test('update filtered by a JSON path', async () => {
  ok(await db.from('items').insert([{ sku: 'updp-1', name: 'p', attrs: { color: 'red' } }, { sku: 'updp-2', name: 'q', attrs: { color: 'blue' } }]));
  ok(await db.from('items').update({ qty: 42 }).eq('attrs->>color', 'blue').like('sku', 'updp-%'));
  assert.deepEqual(await itemsLike('updp-', 'sku,qty'), [{ sku: 'updp-1', qty: 0 }, { sku: 'updp-2', qty: 42 }]);
});

// ---------------------------------------------------------------- delete

test('delete with filters and select returns the deleted rows and removes them', async () => {
  ok(await db.from('items').insert([{ sku: 'del-1', name: 'a' }, { sku: 'del-2', name: 'b' }, { sku: 'del-3', name: 'c' }]));
  const res = await db.from('items').delete().in('sku', ['del-1', 'del-3']).select('sku,name');
  const data = ok(res, 200);
  assert.deepEqual([...data].sort((a, b) => a.sku.localeCompare(b.sku)), [{ sku: 'del-1', name: 'a' }, { sku: 'del-3', name: 'c' }]);
  assert.deepEqual(await itemsLike('del-', 'sku'), [{ sku: 'del-2' }]);
});

test('delete without select answers 204; with count exact reports deleted rows', async () => {
  ok(await db.from('items').insert([{ sku: 'delc-1', name: 'a' }, { sku: 'delc-2', name: 'b' }, { sku: 'delc-3', name: 'c' }]));
  const one = await db.from('items').delete().eq('sku', 'delc-1');
  assert.equal(one.error, null, show(one));
  assert.equal(one.status, 204, show(one));
  const res = await db.from('items').delete({ count: 'exact' }).like('sku', 'delc-%');
  ok(res);
  assert.equal(res.count, 2, show(res));
  assert.deepEqual(await itemsLike('delc-'), []);
});

// ---------------------------------------------------------------- rollback / maxAffected

test('rollback(): the write answers as usual but nothing is kept', async () => {
  assert.equal(typeof db.from('items').insert({}).rollback, 'function', 'client 2.119.1 has rollback()');
  const res = await db.from('items').insert({ sku: 'rb-1', name: 'gone' }).select('sku,name').rollback();
  assert.deepEqual(ok(res, 201), [{ sku: 'rb-1', name: 'gone' }]);
  assert.deepEqual(await itemsLike('rb-'), []);

  ok(await db.from('items').insert({ sku: 'rb-2', name: 'stays' }));
  const upd = await db.from('items').update({ name: 'changed' }).eq('sku', 'rb-2').select('name').rollback();
  assert.deepEqual(ok(upd, 200), [{ name: 'changed' }]);
  assert.deepEqual(await itemsLike('rb-2', 'name'), [{ name: 'stays' }]);

  const del = await db.from('items').delete().eq('sku', 'rb-2').select('sku').rollback();
  assert.deepEqual(ok(del, 200), [{ sku: 'rb-2' }]);
  assert.deepEqual(await itemsLike('rb-2', 'sku'), [{ sku: 'rb-2' }]);
});

test('maxAffected(n): exceeding it fails with PGRST124 and changes nothing', async () => {
  assert.equal(typeof db.from('items').update({}).maxAffected, 'function', 'client 2.119.1 has maxAffected()');
  ok(await db.from('items').insert([{ sku: 'max-1', name: 'a' }, { sku: 'max-2', name: 'b' }, { sku: 'max-3', name: 'c' }]));

  const tooMany = await db.from('items').update({ name: 'x' }).like('sku', 'max-%').maxAffected(2);
  fails(tooMany, 400, 'PGRST124');
  assert.deepEqual(await itemsLike('max-', 'name'), [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);

  const del = await db.from('items').delete().like('sku', 'max-%').maxAffected(1);
  fails(del, 400, 'PGRST124');
  assert.equal((await itemsLike('max-')).length, 3);

  const within = await db.from('items').update({ name: 'y' }).in('sku', ['max-1', 'max-2']).maxAffected(2).select('sku,name');
  assert.deepEqual(
    [...ok(within, 200)].sort((a, b) => a.sku.localeCompare(b.sku)),
    [{ sku: 'max-1', name: 'y' }, { sku: 'max-2', name: 'y' }],
  );
});

// ---------------------------------------------------------------- constraint errors and atomicity

test('NOT NULL violation is 23502 / 400', async () => {
  const res = await db.from('items').insert({ sku: 'nn-1' });
  fails(res, 400, '23502');
  assert.deepEqual(await itemsLike('nn-'), []);
});

test('UNIQUE violation is 23505 / 409', async () => {
  ok(await db.from('items').insert({ sku: 'uq-1', name: 'first' }));
  const res = await db.from('items').insert({ sku: 'uq-1', name: 'second' });
  fails(res, 409, '23505');
  assert.deepEqual(await itemsLike('uq-', 'name'), [{ name: 'first' }]);
});

test('CHECK violation is 23514 / 400 (insert and update)', async () => {
  fails(await db.from('items').insert({ sku: 'ck-1', name: 'neg', qty: -1 }), 400, '23514');
  fails(await db.from('posts').insert({ title: '' }), 400, '23514');
  ok(await db.from('items').insert({ sku: 'ck-2', name: 'pos', qty: 1 }));
  fails(await db.from('items').update({ qty: -5 }).eq('sku', 'ck-2'), 400, '23514');
  assert.deepEqual(await itemsLike('ck-', 'sku,qty'), [{ sku: 'ck-2', qty: 1 }]);
});

test('FOREIGN KEY violation is 23503 / 409', async () => {
  const res = await db.from('posts').insert({ title: 'fk-orphan', author_id: 999 });
  fails(res, 409, '23503');
  const check = ok(await db.from('posts').select('id').eq('title', 'fk-orphan'));
  assert.deepEqual(check, []);
});

test('deleting a referenced parent is 23503 / 409 and deletes nothing', async () => {
  const post = ok(await db.from('posts').insert({ title: 'fk-child', author_id: 1 }).select('id').single());
  assert.equal(typeof post.id, 'number');
  fails(await db.from('authors').delete().eq('id', 1), 409, '23503');
  assert.deepEqual(ok(await db.from('authors').select('name').eq('id', 1)), [{ name: 'Ada' }]);
});

test('unknown column in an insert body is PGRST204 / 400', async () => {
  const res = await db.from('items').insert({ sku: 'unk-1', name: 'x', colour: 'red' });
  fails(res, 400, 'PGRST204');
  assert.deepEqual(await itemsLike('unk-'), []);
});

test('unknown column in an update body is PGRST204 / 400', async () => {
  ok(await db.from('items').insert({ sku: 'unk-2', name: 'x' }));
  const res = await db.from('items').update({ colour: 'red' }).eq('sku', 'unk-2');
  fails(res, 400, 'PGRST204');
});

test('insert into an unknown table is PGRST205 / 404', async () => {
  fails(await db.from('no_such_table').insert({ a: 1 }), 404, 'PGRST205');
});

test('array insert whose 2nd row violates NOT NULL inserts neither row', async () => {
  const res = await db.from('items').insert([
    { sku: 'atom-1', name: 'ok' },
    { sku: 'atom-2', name: null },
  ]);
  fails(res, 400, '23502');
  assert.deepEqual(await itemsLike('atom-'), []);
});

test('array insert whose 3rd row repeats a UNIQUE key inserts no row', async () => {
  const res = await db.from('items').insert([
    { sku: 'atomu-1', name: 'a' },
    { sku: 'atomu-2', name: 'b' },
    { sku: 'atomu-1', name: 'c' },
  ]);
  fails(res, 409, '23505');
  assert.deepEqual(await itemsLike('atomu-'), []);
});

test('array insert whose 2nd row violates a CHECK inserts neither row', async () => {
  const res = await db.from('items').insert([
    { sku: 'atomc-1', name: 'a', qty: 1 },
    { sku: 'atomc-2', name: 'b', qty: -1 },
  ]);
  fails(res, 400, '23514');
  assert.deepEqual(await itemsLike('atomc-'), []);
});

test('update that fails on its 2nd row leaves the 1st row unchanged', async () => {
  ok(await db.from('items').insert([{ sku: 'atomupd-1', name: 'a' }, { sku: 'atomupd-2', name: 'b' }]));
  const res = await db.from('items').update({ sku: 'atomupd-same' }).like('sku', 'atomupd-%');
  fails(res, 409, '23505');
  assert.deepEqual(await itemsLike('atomupd-', 'sku,name'), [
    { sku: 'atomupd-1', name: 'a' },
    { sku: 'atomupd-2', name: 'b' },
  ]);
});

test('upsert array that fails on its 2nd row does not apply the 1st row', async () => {
  ok(await db.from('items').insert({ sku: 'atomup-1', name: 'orig' }));
  const res = await db
    .from('items')
    .upsert([{ sku: 'atomup-1', name: 'merged' }, { sku: 'atomup-2', name: null }], { onConflict: 'sku' });
  fails(res, 400, '23502');
  assert.deepEqual(await itemsLike('atomup-', 'sku,name'), [{ sku: 'atomup-1', name: 'orig' }]);
});

test('a failed write with select() returns no data', async () => {
  const res = await db.from('items').insert([{ sku: 'fsel-1', name: 'a' }, { sku: 'fsel-1', name: 'b' }]).select();
  fails(res, 409, '23505');
  assert.deepEqual(await itemsLike('fsel-'), []);
});

// ---------------------------------------------------------------- values that need care on the wire

test('unicode, quotes and URL-special characters round-trip and filter exactly', async () => {
  const names = ['héllo wörld 🌍', 'it\'s "quoted"', 'a&b=c?d#e/f+g', 'paren (x), comma', '100% _under_'];
  const rows = names.map((name, i) => ({ sku: `wire-${i}`, name }));
  ok(await db.from('items').insert(rows));
  for (const name of names) {
    const got = ok(await db.from('items').select('name').eq('name', name));
    assert.deepEqual(got, [{ name }], `eq ${name}`);
  }
  const inRes = ok(await db.from('items').select('sku').in('name', ['paren (x), comma', 'a&b=c?d#e/f+g']).order('sku'));
  assert.deepEqual(inRes, [{ sku: 'wire-2' }, { sku: 'wire-3' }]);
  // % and _ are wildcards only in like patterns, not in eq
  assert.deepEqual(ok(await db.from('items').select('sku').eq('name', '100% _under_')), [{ sku: 'wire-4' }]);
  assert.deepEqual(ok(await db.from('items').select('sku').eq('name', '100%')), []);
});

test('large integers and negative / fractional reals round-trip', async () => {
  const data = ok(
    await db.from('items').insert({ id: 9007199254740991, sku: 'big-1', name: 'big', qty: 2147483648, price: -0.125 }).select('id,qty,price').single(),
  );
  assert.deepEqual(data, { id: 9007199254740991, qty: 2147483648, price: -0.125 });
  assert.deepEqual(ok(await db.from('items').select('sku').eq('id', 9007199254740991)), [{ sku: 'big-1' }]);
});

test('insert of several rows with single() fails with PGRST116 / 406 and inserts nothing', async () => {
  const res = await db.from('items').insert([{ sku: 'sgl-1', name: 'a' }, { sku: 'sgl-2', name: 'b' }]).select().single();
  fails(res, 406, 'PGRST116');
  assert.deepEqual(await itemsLike('sgl-'), []);
});

test('update hitting several rows with single() fails with PGRST116 / 406 and changes nothing', async () => {
  ok(await db.from('items').insert([{ sku: 'sglu-1', name: 'a' }, { sku: 'sglu-2', name: 'b' }]));
  const res = await db.from('items').update({ name: 'z' }).like('sku', 'sglu-%').select().single();
  fails(res, 406, 'PGRST116');
  assert.deepEqual(await itemsLike('sglu-', 'name'), [{ name: 'a' }, { name: 'b' }]);
});

test('delete().select().single() on exactly one row returns it as an object', async () => {
  ok(await db.from('items').insert({ sku: 'sgld-1', name: 'solo' }));
  const data = ok(await db.from('items').delete().eq('sku', 'sgld-1').select('sku,name').single(), 200);
  assert.deepEqual(data, { sku: 'sgld-1', name: 'solo' });
  assert.deepEqual(await itemsLike('sgld-'), []);
});

test('upsert with defaultToNull:false keeps defaults for keys missing from some rows', async () => {
  const res = await db
    .from('items')
    .upsert([{ sku: 'upd2n-1', name: 'a', note: 'set' }, { sku: 'upd2n-2', name: 'b' }], { onConflict: 'sku', defaultToNull: false })
    .select('sku,note');
  ok(res, [200, 201]);
  assert.deepEqual(await itemsLike('upd2n-', 'sku,note'), [{ sku: 'upd2n-1', note: 'set' }, { sku: 'upd2n-2', note: 'none' }]);
});

// ---------------------------------------------------------------- concurrency

test('40 concurrent inserts from separate requests all land exactly once', async () => {
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => db.from('items').insert({ sku: `conc-${String(i).padStart(2, '0')}`, name: `c${i}` })),
  );
  for (const r of results) assert.equal(r.status, 201, show(r));
  const res = await db.from('items').select('sku', { count: 'exact' }).like('sku', 'conc-%').order('sku');
  ok(res);
  assert.equal(res.count, 40);
  assert.deepEqual(res.data.map((r) => r.sku), Array.from({ length: 40 }, (_, i) => `conc-${String(i).padStart(2, '0')}`));
});

test('concurrent inserts of the same UNIQUE key: exactly one wins, the rest get 23505 / 409', async () => {
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => db.from('items').insert({ sku: 'race-1', name: `r${i}` })),
  );
  const won = results.filter((r) => r.status === 201);
  const lost = results.filter((r) => r.status === 409 && r.error?.code === '23505');
  assert.equal(won.length, 1, results.map(show).join('\n'));
  assert.equal(lost.length, 9, results.map(show).join('\n'));
  assert.equal((await itemsLike('race-')).length, 1);
});

test('concurrent reads and writes interleave without errors or lost rows', async () => {
  const ops = Array.from({ length: 30 }, (_, i) =>
    i % 2 === 0
      ? db.from('items').insert({ sku: `mix-${String(i).padStart(2, '0')}`, name: 'm', qty: i })
      : db.from('items').select('sku').like('sku', 'mix-%'),
  );
  const results = await Promise.all(ops);
  results.forEach((r, i) => {
    assert.equal(r.error, null, show(r));
    assert.equal(r.status, i % 2 === 0 ? 201 : 200, show(r));
  });
  const rows = await itemsLike('mix-', 'qty');
  assert.deepEqual(rows.map((r) => r.qty), Array.from({ length: 15 }, (_, k) => k * 2));
});

// Reads: columns, aliases, casts, JSON paths, ordering, paging, single/maybeSingle, csv, counts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { BLOG_MIGRATIONS, POSTS, ids } from '../lib/fixtures.js';
import { ok, fails, show } from '../lib/assert.js';

let srv;
let db;

before(async () => {
  srv = await startServer({
    migrations: {
      ...BLOG_MIGRATIONS,
      '0003_people.sql': `
        CREATE TABLE people (id INTEGER PRIMARY KEY, "first name" TEXT, "x-y" INTEGER);
        INSERT INTO people (id, "first name", "x-y") VALUES (1, 'Ann', 7), (2, 'Bob', NULL);
      `,
    },
  });
  db = srv.client('service');
});
after(async () => {
  await srv?.stop();
});

test('select * returns every column typed like Postgres (bool, json, numbers, null)', async () => {
  const data = ok(await db.from('posts').select('*').order('id'), 200);
  assert.deepEqual(data, POSTS);
});

test('select() with no argument is select=*', async () => {
  const data = ok(await db.from('authors').select().order('id'));
  assert.deepEqual(data, [
    { id: 1, name: 'Ada', country: 'UK' },
    { id: 2, name: 'Brian', country: 'US' },
    { id: 3, name: 'Chen', country: null },
  ]);
});

test('select a subset of columns (whitespace is stripped by the client)', async () => {
  const data = ok(await db.from('posts').select(' id ,  title ').order('id').limit(3));
  assert.deepEqual(data, [
    { id: 1, title: 'Hello World' },
    { id: 2, title: 'Second post' },
    { id: 3, title: 'Rust, SQLite and you' },
  ]);
});

test('column aliases rename keys', async () => {
  const data = ok(await db.from('posts').select('post_id:id,heading:title').order('id').limit(2));
  assert.deepEqual(data, [
    { post_id: 1, heading: 'Hello World' },
    { post_id: 2, heading: 'Second post' },
  ]);
});

test('casts: id::text returns strings under the column name, aliased casts keep the alias', async () => {
  const data = ok(await db.from('posts').select('id::text,pid:id::text,title').order('id').limit(2));
  assert.deepEqual(data, [
    { id: '1', pid: '1', title: 'Hello World' },
    { id: '2', pid: '2', title: 'Second post' },
  ]);
});

test('JSON paths: -> keeps JSON, ->> gives text, keys named after the last path element', async () => {
  const data = ok(await db.from('posts').select('id,meta->a,meta->>b,meta->nested->>k').order('id'));
  assert.deepEqual(data, [
    { id: 1, a: 1, b: 'x', k: 'v' },
    { id: 2, a: 2, b: 'y', k: null },
    { id: 3, a: null, b: null, k: null },
    { id: 4, a: 3, b: null, k: null },
    { id: 5, a: null, b: 'z', k: null },
  ]);
});

test('JSON paths: -> on an object returns the object; ->> on a number returns its text; aliases', async () => {
  const data = ok(
    await db.from('posts').select('id,n:meta->nested,a_text:meta->>a,first_tag:tags->>0').order('id'),
  );
  assert.deepEqual(data, [
    { id: 1, n: { k: 'v' }, a_text: '1', first_tag: 'red' },
    { id: 2, n: null, a_text: '2', first_tag: 'blue' },
    { id: 3, n: null, a_text: null, first_tag: 'red' },
    { id: 4, n: null, a_text: '3', first_tag: null },
    { id: 5, n: null, a_text: null, first_tag: 'green' },
  ]);
});

test('order ascending puts NULLs last (Postgres default)', async () => {
  const data = ok(await db.from('posts').select('id,score').order('score'));
  assert.deepEqual(ids(data), [4, 5, 3, 1, 2]);
});

test('order descending puts NULLs first (Postgres default)', async () => {
  const data = ok(await db.from('posts').select('id,score').order('score', { ascending: false }));
  assert.deepEqual(ids(data), [2, 1, 3, 5, 4]);
});

test('order with explicit nullsFirst / nullsLast', async () => {
  const a = ok(await db.from('posts').select('id').order('score', { ascending: true, nullsFirst: true }));
  assert.deepEqual(ids(a), [2, 4, 5, 3, 1]);
  const b = ok(await db.from('posts').select('id').order('score', { ascending: false, nullsFirst: false }));
  assert.deepEqual(ids(b), [1, 3, 5, 4, 2]);
});

test('several order() calls combine left to right (booleans sort false < true)', async () => {
  const data = ok(
    await db.from('posts').select('id').order('published').order('id', { ascending: false }),
  );
  assert.deepEqual(ids(data), [4, 2, 5, 3, 1]);
});

test('order descending on a text column', async () => {
  // Names chosen so that any collation puts them in this order.
  const data = ok(await db.from('authors').select('name').order('name', { ascending: false }));
  assert.deepEqual(data, [{ name: 'Chen' }, { name: 'Brian' }, { name: 'Ada' }]);
});

test('limit', async () => {
  const data = ok(await db.from('posts').select('id').order('id').limit(2));
  assert.deepEqual(ids(data), [1, 2]);
});

test('range(from, to) is inclusive (offset/limit)', async () => {
  const data = ok(await db.from('posts').select('id').order('id').range(1, 3));
  assert.deepEqual(ids(data), [2, 3, 4]);
});

test('single() returns one object', async () => {
  const data = ok(await db.from('posts').select('*').eq('id', 3).single(), 200);
  assert.deepEqual(data, POSTS[2]);
});

test('single() with zero rows is PGRST116 / 406', async () => {
  const res = await db.from('posts').select('id').eq('id', 999).single();
  fails(res, 406, 'PGRST116');
});

test('single() with several rows is PGRST116 / 406', async () => {
  const res = await db.from('posts').select('id').eq('published', true).single();
  fails(res, 406, 'PGRST116');
});

test('maybeSingle(): 0 rows -> null, 1 row -> object, >1 rows -> PGRST116', async () => {
  const none = await db.from('posts').select('id').eq('id', 999).maybeSingle();
  assert.equal(none.error, null, show(none));
  assert.equal(none.data, null);

  const one = await db.from('posts').select('id,title').eq('id', 2).maybeSingle();
  assert.equal(one.error, null, show(one));
  assert.deepEqual(one.data, { id: 2, title: 'Second post' });

  const many = await db.from('posts').select('id').maybeSingle();
  fails(many, 406, 'PGRST116');
});

test('csv() returns text/csv with a header row and quoted fields', async () => {
  const res = await db.from('posts').select('id,title').order('id').in('id', [1, 3]).csv();
  const data = ok(res, 200);
  assert.equal(typeof data, 'string', show(res));
  assert.deepEqual(data.replace(/\r?\n$/, '').split(/\r?\n/), [
    'id,title',
    '1,Hello World',
    '3,"Rust, SQLite and you"',
  ]);
});

test('count exact with head:true returns the count and no data', async () => {
  const res = await db.from('posts').select('*', { count: 'exact', head: true });
  ok(res, 200);
  assert.equal(res.count, 5, show(res));
  assert.equal(res.data, null);

  const filtered = await db.from('posts').select('*', { count: 'exact', head: true }).eq('published', true);
  ok(filtered);
  assert.equal(filtered.count, 3, show(filtered));
});

test('count exact alongside data counts the whole filtered set, not the page', async () => {
  const res = await db.from('posts').select('id', { count: 'exact' }).order('id').range(0, 1);
  const data = ok(res, [200, 206]);
  assert.deepEqual(ids(data), [1, 2]);
  assert.equal(res.count, 5, show(res));
});

test('count exact on an empty result is 0', async () => {
  const res = await db.from('posts').select('id', { count: 'exact' }).eq('id', 999);
  const data = ok(res, 200);
  assert.deepEqual(data, []);
  assert.equal(res.count, 0, show(res));
});

test('head:true without count gives no data and no count', async () => {
  const res = await db.from('posts').select('id', { head: true });
  ok(res, 200);
  assert.equal(res.data, null);
  assert.equal(res.count, null);
});

test('stripNulls() omits null-valued keys', async () => {
  const data = ok(await db.from('posts').select('id,score,meta').in('id', [2, 3]).order('id').stripNulls());
  assert.deepEqual(data, [{ id: 2, meta: { a: 2, b: 'y' } }, { id: 3, score: 3 }]);
});

test('an empty table / no matching row gives [] with 200', async () => {
  const res = await db.from('posts').select('id').gt('id', 100);
  assert.deepEqual(ok(res, 200), []);
});

test('csv() renders NULL as an empty field and numbers plainly', async () => {
  const data = ok(await db.from('posts').select('id,score').in('id', [1, 2, 4]).order('id').csv());
  assert.deepEqual(data.replace(/\r?\n$/, '').split(/\r?\n/), ['id,score', '1,4.5', '2,', '4,1.25']);
});

test('quoted identifiers: columns with a space or a dash', async () => {
  const data = ok(await db.from('people').select('id,"first name",dash:"x-y"').order('id'));
  assert.deepEqual(data, [
    { id: 1, 'first name': 'Ann', dash: 7 },
    { id: 2, 'first name': 'Bob', dash: null },
  ]);
  const all = ok(await db.from('people').select('*').eq('id', 1));
  assert.deepEqual(all, [{ id: 1, 'first name': 'Ann', 'x-y': 7 }]);
});

// Every filter method of postgrest-js against the seeded posts table.
//
//  id | title                  | published | meta                              | tags            | author | score
//   1 | Hello World            | true      | {"a":1,"b":"x","nested":{"k":"v"}}| ["red","green"] | 1      | 4.5
//   2 | Second post            | false     | {"a":2,"b":"y"}                   | ["blue"]        | 1      | null
//   3 | Rust, SQLite and you   | true      | null                              | ["red","blue"]  | 2      | 3
//   4 | draft: untitled        | false     | {"a":3}                           | []              | null   | 1.25
//   5 | Zebra 100%             | true      | {"b":"z"}                         | ["green"]       | 2      | 2
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rest } from '../lib/server.js';
import { BLOG_MIGRATIONS, ids } from '../lib/fixtures.js';
import { ok } from '../lib/assert.js';

let srv;
let db;

before(async () => {
  srv = await startServer({ migrations: BLOG_MIGRATIONS });
  db = srv.client('service');
});
after(async () => {
  await srv?.stop();
});

/** Run a filtered select on posts and return the ids in id order. */
async function postIds(apply) {
  const res = await apply(db.from('posts').select('id')).order('id');
  return ids(ok(res, 200));
}

test('eq on boolean, integer, text (text with a space and a %)', async () => {
  assert.deepEqual(await postIds((q) => q.eq('published', true)), [1, 3, 5]);
  assert.deepEqual(await postIds((q) => q.eq('published', false)), [2, 4]);
  assert.deepEqual(await postIds((q) => q.eq('author_id', 2)), [3, 5]);
  assert.deepEqual(await postIds((q) => q.eq('title', 'Second post')), [2]);
  assert.deepEqual(await postIds((q) => q.eq('title', 'Zebra 100%')), [5]);
  assert.deepEqual(await postIds((q) => q.eq('title', 'Rust, SQLite and you')), [3]);
});

test('eq on a REAL column', async () => {
  assert.deepEqual(await postIds((q) => q.eq('score', 4.5)), [1]);
  assert.deepEqual(await postIds((q) => q.eq('score', 3)), [3]);
});

test('neq excludes NULLs like SQL <>', async () => {
  assert.deepEqual(await postIds((q) => q.neq('author_id', 1)), [3, 5]);
  assert.deepEqual(await postIds((q) => q.neq('title', 'Hello World')), [2, 3, 4, 5]);
});

test('gt, gte, lt, lte on a REAL column with a NULL', async () => {
  assert.deepEqual(await postIds((q) => q.gt('score', 2)), [1, 3]);
  assert.deepEqual(await postIds((q) => q.gte('score', 2)), [1, 3, 5]);
  assert.deepEqual(await postIds((q) => q.lt('score', 3)), [4, 5]);
  assert.deepEqual(await postIds((q) => q.lte('score', 3)), [3, 4, 5]);
  assert.deepEqual(await postIds((q) => q.gt('score', 1.3).lt('score', 4)), [3, 5]);
});

test('gt / lt on integer and text columns compare as the column type', async () => {
  // Integer comparison, not text: '10' > '9' is false as text.
  assert.deepEqual(await postIds((q) => q.lt('id', 10).gt('id', 3)), [4, 5]);
  assert.deepEqual(await postIds((q) => q.gte('created_at', '2024-01-04')), [4, 5]);
});

test('like is case-sensitive; * is accepted as a wildcard', async () => {
  assert.deepEqual(await postIds((q) => q.like('title', '%post%')), [2]);
  assert.deepEqual(await postIds((q) => q.like('title', '%POST%')), []);
  assert.deepEqual(await postIds((q) => q.like('title', '*post*')), [2]);
  assert.deepEqual(await postIds((q) => q.like('title', 'Hello_World')), [1]);
});

test('ilike is case-insensitive', async () => {
  assert.deepEqual(await postIds((q) => q.ilike('title', '%HELLO%')), [1]);
  assert.deepEqual(await postIds((q) => q.ilike('title', 'd%')), [4]);
  assert.deepEqual(await postIds((q) => q.ilike('title', '*sqlite*')), [3]);
});

test('is null / is true / is false, and not is null', async () => {
  assert.deepEqual(await postIds((q) => q.is('author_id', null)), [4]);
  assert.deepEqual(await postIds((q) => q.is('meta', null)), [3]);
  assert.deepEqual(await postIds((q) => q.is('score', null)), [2]);
  assert.deepEqual(await postIds((q) => q.is('published', true)), [1, 3, 5]);
  assert.deepEqual(await postIds((q) => q.is('published', false)), [2, 4]);
  assert.deepEqual(await postIds((q) => q.not('author_id', 'is', null)), [1, 2, 3, 5]);
});

test('isDistinct treats NULL as a value', async () => {
  assert.deepEqual(await postIds((q) => q.isDistinct('author_id', 1)), [3, 4, 5]);
});

test('in() with numbers, with strings containing commas, and notIn', async () => {
  assert.deepEqual(await postIds((q) => q.in('id', [1, 3, 99])), [1, 3]);
  assert.deepEqual(await postIds((q) => q.in('id', [])), []);
  assert.deepEqual(
    await postIds((q) => q.in('title', ['Rust, SQLite and you', 'Hello World', 'nope'])),
    [1, 3],
  );
  assert.deepEqual(await postIds((q) => q.notIn('id', [1, 2])), [3, 4, 5]);
  assert.deepEqual(await postIds((q) => q.not('id', 'in', '(1,2)')), [3, 4, 5]);
});

test('match({...}) is one eq per key', async () => {
  assert.deepEqual(await postIds((q) => q.match({ published: true, author_id: 2 })), [3, 5]);
  assert.deepEqual(await postIds((q) => q.match({ published: false, author_id: 2 })), []);
});

test('regex: match (case-sensitive) and imatch (case-insensitive), via filter() and regexMatch()', async () => {
  assert.deepEqual(await postIds((q) => q.filter('title', 'match', '^[A-Z][a-z]+ ')), [1, 2, 5]);
  assert.deepEqual(await postIds((q) => q.filter('title', 'match', '^h')), []);
  assert.deepEqual(await postIds((q) => q.filter('title', 'imatch', '^h')), [1]);
  assert.deepEqual(await postIds((q) => q.regexMatch('title', '[0-9]+%$')), [5]);
  assert.deepEqual(await postIds((q) => q.regexIMatch('title', 'sqlite')), [3]);
  assert.deepEqual(await postIds((q) => q.not('title', 'imatch', '^[a-h]')), [2, 3, 5]);
});

test('contains on a JSON array column (JSON text and array forms)', async () => {
  assert.deepEqual(await postIds((q) => q.contains('tags', '["red"]')), [1, 3]);
  assert.deepEqual(await postIds((q) => q.contains('tags', '["red","blue"]')), [3]);
  assert.deepEqual(await postIds((q) => q.contains('tags', '[]')), [1, 2, 3, 4, 5]);
});

test('contains with a JS array (client sends cs.{a,b}) on a JSON array column', async () => {
  assert.deepEqual(await postIds((q) => q.contains('tags', ['red'])), [1, 3]);
  assert.deepEqual(await postIds((q) => q.contains('tags', ['red', 'green'])), [1]);
});

test('contains with an object on a JSON object column', async () => {
  assert.deepEqual(await postIds((q) => q.contains('meta', { a: 1 })), [1]);
  assert.deepEqual(await postIds((q) => q.contains('meta', { nested: { k: 'v' } })), [1]);
  assert.deepEqual(await postIds((q) => q.contains('meta', { b: 'y', a: 2 })), [2]);
  assert.deepEqual(await postIds((q) => q.contains('meta', {})), [1, 2, 4, 5]);
});

test('containedBy on JSON arrays and objects', async () => {
  assert.deepEqual(await postIds((q) => q.containedBy('tags', '["red","green"]')), [1, 4, 5]);
  assert.deepEqual(await postIds((q) => q.containedBy('tags', ['red', 'green'])), [1, 4, 5]);
  assert.deepEqual(await postIds((q) => q.containedBy('meta', { a: 2, b: 'y', c: 1 })), [2]);
});

test('overlaps on a JSON array column', async () => {
  assert.deepEqual(await postIds((q) => q.overlaps('tags', ['red', 'blue'])), [1, 2, 3]);
  assert.deepEqual(await postIds((q) => q.overlaps('tags', ['purple'])), []);
});

test('filters on JSON paths (->> text, -> json)', async () => {
  assert.deepEqual(await postIds((q) => q.eq('meta->>b', 'x')), [1]);
  assert.deepEqual(await postIds((q) => q.eq('meta->nested->>k', 'v')), [1]);
  assert.deepEqual(await postIds((q) => q.in('meta->>b', ['y', 'z'])), [2, 5]);
  assert.deepEqual(await postIds((q) => q.is('meta->>b', null)), [3, 4]);
  assert.deepEqual(await postIds((q) => q.gt('meta->a', 1)), [2, 4]);
});

test('not() negates any operator', async () => {
  assert.deepEqual(await postIds((q) => q.not('title', 'like', '%o%')), [4, 5]);
  assert.deepEqual(await postIds((q) => q.not('published', 'eq', true)), [2, 4]);
  assert.deepEqual(await postIds((q) => q.not('score', 'gt', 2)), [4, 5]);
});

test('or() at top level', async () => {
  assert.deepEqual(await postIds((q) => q.or('id.eq.1,score.gt.2.5')), [1, 3]);
  assert.deepEqual(await postIds((q) => q.or('author_id.is.null,title.ilike.*zebra*')), [4, 5]);
});

test('or() combines with other filters by AND', async () => {
  assert.deepEqual(await postIds((q) => q.eq('published', true).or('id.eq.1,id.eq.2')), [1]);
});

test('or() with nested and() and not', async () => {
  assert.deepEqual(
    await postIds((q) => q.or('id.eq.4,and(published.eq.true,score.lt.3)')),
    [4, 5],
  );
  assert.deepEqual(
    await postIds((q) => q.or('and(author_id.eq.1,published.is.false),and(author_id.eq.2,score.not.gt.2.5)')),
    [2, 5],
  );
  // a negated logic tree inside or()
  assert.deepEqual(await postIds((q) => q.or('id.eq.1,not.and(id.gt.1,published.eq.true)')), [1, 2, 4]);
  assert.deepEqual(await postIds((q) => q.or('id.in.(1,2),title.like.Zeb*')), [1, 2, 5]);
});

test('or() with a quoted value containing a comma', async () => {
  assert.deepEqual(await postIds((q) => q.or('title.eq."Rust, SQLite and you",id.eq.5')), [3, 5]);
});

test('filter(column, operator, value) passes raw operators', async () => {
  assert.deepEqual(await postIds((q) => q.filter('id', 'in', '(2,4)')), [2, 4]);
  assert.deepEqual(await postIds((q) => q.filter('score', 'gte', 3)), [1, 3]);
  assert.deepEqual(await postIds((q) => q.filter('author_id', 'is', 'null')), [4]);
});

test('likeAllOf / likeAnyOf / ilikeAllOf / ilikeAnyOf', async () => {
  assert.deepEqual(await postIds((q) => q.likeAllOf('title', ['%o%', '%e%'])), [1, 2, 3]);
  assert.deepEqual(await postIds((q) => q.likeAnyOf('title', ['Z%', 'd%'])), [4, 5]);
  assert.deepEqual(await postIds((q) => q.ilikeAllOf('title', ['h%', '%WORLD'])), [1]);
  assert.deepEqual(await postIds((q) => q.ilikeAnyOf('title', ['%SQLITE%', 'z%'])), [3, 5]);
});

test('several filters on the same column are ANDed', async () => {
  assert.deepEqual(await postIds((q) => q.gte('id', 2).lte('id', 4).neq('id', 3)), [2, 4]);
});

test('filters compose with order and limit', async () => {
  const data = ok(
    await db.from('posts').select('id').eq('published', true).order('score', { ascending: false }).limit(2),
  );
  assert.deepEqual(ids(data), [1, 3]);
});

test('top-level and=(...) and not.or=(...) query parameters (plain HTTP)', async () => {
  const a = await rest(srv, '/posts?select=id&order=id&and=(id.gt.1,id.lt.4)');
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(ids(a.json), [2, 3]);
  const b = await rest(srv, '/posts?select=id&order=id&not.or=(id.eq.1,id.eq.2)');
  assert.equal(b.status, 200, b.text);
  assert.deepEqual(ids(b.json), [3, 4, 5]);
  const c = await rest(srv, '/posts?select=id&order=id&not.and=(published.is.true,score.gt.2.5)');
  assert.equal(c.status, 200, c.text);
  assert.deepEqual(ids(c.json), [2, 4, 5]);
});

test('order by a JSON path', async () => {
  const data = ok(await db.from('posts').select('id').order('meta->>b').order('id'));
  assert.deepEqual(ids(data), [1, 2, 5, 3, 4]);
  const desc = ok(await db.from('posts').select('id').order('meta->a', { ascending: false, nullsFirst: false }).order('id'));
  assert.deepEqual(ids(desc), [4, 2, 1, 3, 5]);
});

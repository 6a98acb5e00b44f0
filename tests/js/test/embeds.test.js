// Resource embedding over foreign keys: authors 1-n posts 1-n comments; messages has two FKs to authors.
//
// authors: 1 Ada (posts 1,2), 2 Brian (posts 3,5), 3 Chen (no posts). Post 4 has no author.
// comments: post 1 -> [1 'First!' 3 votes, 2 'Nice' 5], post 3 -> [3 'Great read' 1, 4 'meh' 0], post 5 -> [5 'ok' 2]
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { BLOG_MIGRATIONS, ids } from '../lib/fixtures.js';
import { ok, fails } from '../lib/assert.js';

let srv;
let db;

before(async () => {
  srv = await startServer({ migrations: BLOG_MIGRATIONS });
  db = srv.client('service');
});
after(async () => {
  await srv?.stop();
});

/** Sort an embedded array by id in place (embedded arrays have no order unless asked for). */
const byId = (arr) => [...arr].sort((a, b) => a.id - b.id);

test('many-to-one embed is an object (null when the FK is null)', async () => {
  const data = ok(await db.from('posts').select('id,authors(name)').order('id'), 200);
  assert.deepEqual(data, [
    { id: 1, authors: { name: 'Ada' } },
    { id: 2, authors: { name: 'Ada' } },
    { id: 3, authors: { name: 'Brian' } },
    { id: 4, authors: null },
    { id: 5, authors: { name: 'Brian' } },
  ]);
});

test('many-to-one embed with * and an alias', async () => {
  const data = ok(await db.from('posts').select('id,writer:authors(*)').eq('id', 3));
  assert.deepEqual(data, [{ id: 3, writer: { id: 2, name: 'Brian', country: 'US' } }]);
});

test('one-to-many embed is an array (empty when no children)', async () => {
  const data = ok(await db.from('authors').select('name,posts(id,title)').order('id'));
  assert.equal(data.length, 3);
  assert.deepEqual(
    data.map((a) => ({ name: a.name, posts: byId(a.posts) })),
    [
      { name: 'Ada', posts: [{ id: 1, title: 'Hello World' }, { id: 2, title: 'Second post' }] },
      { name: 'Brian', posts: [{ id: 3, title: 'Rust, SQLite and you' }, { id: 5, title: 'Zebra 100%' }] },
      { name: 'Chen', posts: [] },
    ],
  );
});

test('embedded columns keep their JSON types (bool, json) inside embeds', async () => {
  const data = ok(await db.from('authors').select('id,posts(id,published,meta,tags)').eq('id', 1));
  assert.deepEqual(byId(data[0].posts), [
    { id: 1, published: true, meta: { a: 1, b: 'x', nested: { k: 'v' } }, tags: ['red', 'green'] },
    { id: 2, published: false, meta: { a: 2, b: 'y' }, tags: ['blue'] },
  ]);
});

test('nested embeds: authors -> posts -> comments', async () => {
  const data = ok(
    await db
      .from('authors')
      .select('id,posts(id,comments(id,body))')
      .order('id')
      .order('id', { referencedTable: 'posts' })
      .order('id', { referencedTable: 'posts.comments' }),
  );
  assert.deepEqual(data, [
    {
      id: 1,
      posts: [
        { id: 1, comments: [{ id: 1, body: 'First!' }, { id: 2, body: 'Nice' }] },
        { id: 2, comments: [] },
      ],
    },
    {
      id: 2,
      posts: [
        { id: 3, comments: [{ id: 3, body: 'Great read' }, { id: 4, body: 'meh' }] },
        { id: 5, comments: [{ id: 5, body: 'ok' }] },
      ],
    },
    { id: 3, posts: [] },
  ]);
});

test('nested many-to-one chain: comments -> posts -> authors', async () => {
  const data = ok(await db.from('comments').select('id,posts(title,authors(name))').in('id', [1, 3]).order('id'));
  assert.deepEqual(data, [
    { id: 1, posts: { title: 'Hello World', authors: { name: 'Ada' } } },
    { id: 3, posts: { title: 'Rust, SQLite and you', authors: { name: 'Brian' } } },
  ]);
});

test('!inner on many-to-one drops parents without a match', async () => {
  const data = ok(await db.from('posts').select('id,authors!inner(name)').order('id'));
  assert.deepEqual(ids(data), [1, 2, 3, 5]);
  assert.deepEqual(data[2], { id: 3, authors: { name: 'Brian' } });
});

test('!inner with a filter on the embed filters the parents', async () => {
  const data = ok(await db.from('posts').select('id,authors!inner(name)').eq('authors.name', 'Brian').order('id'));
  assert.deepEqual(data, [
    { id: 3, authors: { name: 'Brian' } },
    { id: 5, authors: { name: 'Brian' } },
  ]);
});

test('!inner on one-to-many drops authors without posts; with an embedded filter', async () => {
  const a = ok(await db.from('authors').select('id,posts!inner(id)').order('id'));
  assert.deepEqual(ids(a), [1, 2]);

  const b = ok(await db.from('authors').select('id,posts!inner(id)').eq('posts.id', 5).order('id'));
  assert.deepEqual(b, [{ id: 2, posts: [{ id: 5 }] }]);
});

test('!left is the default outer embed', async () => {
  const data = ok(await db.from('authors').select('id,posts!left(id)').eq('posts.published', true).order('id'));
  assert.deepEqual(
    data.map((a) => ({ id: a.id, posts: byId(a.posts) })),
    [
      { id: 1, posts: [{ id: 1 }] },
      { id: 2, posts: [{ id: 3 }, { id: 5 }] },
      { id: 3, posts: [] },
    ],
  );
});

test('hint by FK column: authors!author_id(...), with an alias', async () => {
  const data = ok(await db.from('posts').select('id,writer:authors!author_id(name)').in('id', [1, 4]).order('id'));
  assert.deepEqual(data, [
    { id: 1, writer: { name: 'Ada' } },
    { id: 4, writer: null },
  ]);
});

test('hints disambiguate two FKs to the same table', async () => {
  const data = ok(
    await db
      .from('messages')
      .select('id,text,sender:authors!sender_id(name),receiver:authors!receiver_id(name)')
      .order('id'),
  );
  assert.deepEqual(data, [
    { id: 1, text: 'hi Brian', sender: { name: 'Ada' }, receiver: { name: 'Brian' } },
    { id: 2, text: 'hi Ada', sender: { name: 'Brian' }, receiver: { name: 'Ada' } },
  ]);
});

test('hint combined with !inner: authors!author_id!inner(...)', async () => {
  const data = ok(await db.from('posts').select('id,authors!author_id!inner(name)').order('id'));
  assert.deepEqual(ids(data), [1, 2, 3, 5]);
});

test('ambiguous embed without a hint is PGRST201 / 300', async () => {
  const res = await db.from('messages').select('id,authors(name)');
  fails(res, 300, 'PGRST201');
});

test('spread ...authors(name) lifts the embedded columns into the parent', async () => {
  const data = ok(await db.from('posts').select('id,...authors(name)').order('id'));
  assert.deepEqual(data, [
    { id: 1, name: 'Ada' },
    { id: 2, name: 'Ada' },
    { id: 3, name: 'Brian' },
    { id: 4, name: null },
    { id: 5, name: 'Brian' },
  ]);
});

test('spread with aliases inside', async () => {
  const data = ok(await db.from('posts').select('id,...authors(author_name:name,author_country:country)').eq('id', 3));
  assert.deepEqual(data, [{ id: 3, author_name: 'Brian', author_country: 'US' }]);
});

test('embedded filter .eq("posts.published", true) filters children, not parents', async () => {
  const data = ok(await db.from('authors').select('id,posts(id)').eq('posts.published', true).order('id'));
  assert.deepEqual(
    data.map((a) => ({ id: a.id, posts: byId(a.posts) })),
    [
      { id: 1, posts: [{ id: 1 }] },
      { id: 2, posts: [{ id: 3 }, { id: 5 }] },
      { id: 3, posts: [] },
    ],
  );
});

test('embedded order and limit via referencedTable', async () => {
  const data = ok(
    await db
      .from('authors')
      .select('id,posts(id)')
      .order('id')
      .order('id', { referencedTable: 'posts', ascending: false })
      .limit(1, { referencedTable: 'posts' }),
  );
  assert.deepEqual(data, [
    { id: 1, posts: [{ id: 2 }] },
    { id: 2, posts: [{ id: 5 }] },
    { id: 3, posts: [] },
  ]);
});

test('embedded range via referencedTable', async () => {
  const data = ok(
    await db
      .from('posts')
      .select('id,comments(id)')
      .eq('id', 1)
      .order('id', { referencedTable: 'comments' })
      .range(1, 1, { referencedTable: 'comments' }),
  );
  assert.deepEqual(data, [{ id: 1, comments: [{ id: 2 }] }]);
});

test('embedded order on a non-id column', async () => {
  const data = ok(
    await db
      .from('posts')
      .select('id,comments(body,votes)')
      .eq('id', 3)
      .order('votes', { referencedTable: 'comments', ascending: true }),
  );
  assert.deepEqual(data, [{ id: 3, comments: [{ body: 'meh', votes: 0 }, { body: 'Great read', votes: 1 }] }]);
});

test('or() on a referenced table filters the embedded rows', async () => {
  const data = ok(
    await db
      .from('authors')
      .select('id,posts(id)')
      .or('id.eq.1,id.eq.5', { referencedTable: 'posts' })
      .order('id'),
  );
  assert.deepEqual(data, [
    { id: 1, posts: [{ id: 1 }] },
    { id: 2, posts: [{ id: 5 }] },
    { id: 3, posts: [] },
  ]);
});

test('embed alongside top-level filters, order, count', async () => {
  const res = await db
    .from('posts')
    .select('id,authors(name)', { count: 'exact' })
    .eq('published', true)
    .order('score', { ascending: false })
    .limit(2);
  const data = ok(res);
  assert.equal(res.count, 3);
  assert.deepEqual(data, [
    { id: 1, authors: { name: 'Ada' } },
    { id: 3, authors: { name: 'Brian' } },
  ]);
});

test('embedding through single() returns one object with its embeds', async () => {
  const data = ok(
    await db.from('authors').select('name,posts(id)').eq('id', 2).order('id', { referencedTable: 'posts' }).single(),
  );
  assert.deepEqual(data, { name: 'Brian', posts: [{ id: 3 }, { id: 5 }] });
});

test('unknown relationship is PGRST200 / 400', async () => {
  const res = await db.from('posts').select('id,nope(id)');
  fails(res, 400, 'PGRST200');
});

test('embedding an existing table with no FK between them is PGRST200 / 400', async () => {
  const res = await db.from('comments').select('id,messages(id)');
  fails(res, 400, 'PGRST200');
});

test('filter on a nested embed (posts.comments.votes) filters the innermost rows only', async () => {
  const data = ok(
    await db
      .from('authors')
      .select('id,posts(id,comments(id))')
      .gt('posts.comments.votes', 2)
      .order('id')
      .order('id', { referencedTable: 'posts' })
      .order('id', { referencedTable: 'posts.comments' }),
  );
  assert.deepEqual(data, [
    { id: 1, posts: [{ id: 1, comments: [{ id: 1 }, { id: 2 }] }, { id: 2, comments: [] }] },
    { id: 2, posts: [{ id: 3, comments: [] }, { id: 5, comments: [] }] },
    { id: 3, posts: [] },
  ]);
});

test('top-level filter on embed existence: authors=not.is.null acts like !inner', async () => {
  const data = ok(await db.from('posts').select('id,authors(name)').not('authors', 'is', null).order('id'));
  assert.deepEqual(ids(data), [1, 2, 3, 5]);
  const none = ok(await db.from('posts').select('id,authors(name)').is('authors', null));
  assert.deepEqual(none, [{ id: 4, authors: null }]);
});

test('count with a one-to-many !inner embed counts parents, not joined rows', async () => {
  const res = await db.from('authors').select('id,posts!inner(id)', { count: 'exact', head: true });
  ok(res, 200);
  assert.equal(res.count, 2, JSON.stringify(res));
  const filtered = await db
    .from('posts')
    .select('id,authors!inner(name)', { count: 'exact', head: true })
    .eq('authors.name', 'Brian');
  ok(filtered);
  assert.equal(filtered.count, 2, JSON.stringify(filtered));
});

test('limit applies to parents even when a one-to-many embed has several children', async () => {
  const data = ok(
    await db
      .from('authors')
      .select('id,posts!inner(id)')
      .order('id')
      .order('id', { referencedTable: 'posts' })
      .limit(1),
  );
  assert.deepEqual(data, [{ id: 1, posts: [{ id: 1 }, { id: 2 }] }]);
});

test('!inner with an embedded filter filters both the parents and the children', async () => {
  const data = ok(
    await db
      .from('authors')
      .select('id,posts!inner(id)')
      .eq('posts.published', true)
      .order('id')
      .order('id', { referencedTable: 'posts' }),
  );
  assert.deepEqual(data, [
    { id: 1, posts: [{ id: 1 }] },
    { id: 2, posts: [{ id: 3 }, { id: 5 }] },
  ]);
});

test('filter on a many-to-one embed without !inner nulls the embed but keeps every parent', async () => {
  const data = ok(await db.from('posts').select('id,authors(name)').eq('authors.name', 'Brian').order('id'));
  assert.deepEqual(data, [
    { id: 1, authors: null },
    { id: 2, authors: null },
    { id: 3, authors: { name: 'Brian' } },
    { id: 4, authors: null },
    { id: 5, authors: { name: 'Brian' } },
  ]);
});

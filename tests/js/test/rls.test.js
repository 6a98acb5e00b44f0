// Row-level security and RPC, end to end with the real client: a signed-in-user todo app that
// only ever uses the anon key plus user JWTs, a team-membership example (policies with EXISTS
// subqueries), a restrictive policy, a table with RLS disabled, and SQL functions through
// supabase.rpc(). A service client is used only to check what really is in the database.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rest } from '../lib/server.js';
import { ok, fails, show, assertErrorShape } from '../lib/assert.js';

const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const C = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'; // signed in, member of no team, no todos

const SCHEMA = `
CREATE TABLE todos (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  done BOOLEAN NOT NULL DEFAULT false,
  user_id TEXT NOT NULL DEFAULT (auth.uid()),
  created_at TEXT DEFAULT (now())
);
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own todos" ON todos FOR ALL TO authenticated
  USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- Notes hang off todos and have their own policy.
CREATE TABLE todo_notes (
  id INTEGER PRIMARY KEY,
  todo_id INTEGER NOT NULL REFERENCES todos(id),
  body TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT (auth.uid())
);
ALTER TABLE todo_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own notes" ON todo_notes FOR ALL TO authenticated
  USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

CREATE TABLE teams (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL
);
CREATE TABLE members (
  team_id INTEGER NOT NULL REFERENCES teams(id),
  user_id TEXT NOT NULL,
  PRIMARY KEY (team_id, user_id)
);
CREATE TABLE projects (
  id INTEGER PRIMARY KEY,
  team_id INTEGER NOT NULL REFERENCES teams(id),
  name TEXT NOT NULL,
  archived BOOLEAN NOT NULL DEFAULT false
);
ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE members ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY "see own memberships" ON members FOR SELECT TO authenticated
  USING (user_id = auth.uid());
CREATE POLICY "members see their teams" ON teams FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM members m WHERE m.team_id = teams.id AND m.user_id = auth.uid()));
CREATE POLICY "members read projects" ON projects FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM members m WHERE m.team_id = projects.team_id AND m.user_id = auth.uid()));
CREATE POLICY "members add projects" ON projects FOR INSERT TO authenticated
  WITH CHECK (EXISTS (SELECT 1 FROM members m WHERE m.team_id = projects.team_id AND m.user_id = auth.uid()));
CREATE POLICY "members edit projects" ON projects FOR UPDATE TO authenticated
  USING (EXISTS (SELECT 1 FROM members m WHERE m.team_id = projects.team_id AND m.user_id = auth.uid()));
CREATE POLICY "archived projects are frozen" ON projects AS RESTRICTIVE FOR ALL
  USING (NOT archived);

CREATE TABLE notices (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
ALTER TABLE notices DISABLE ROW LEVEL SECURITY;

-- Anyone may send feedback; nobody but service_role may read it.
CREATE TABLE feedback (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
ALTER TABLE feedback ENABLE ROW LEVEL SECURITY;
CREATE POLICY "anyone may send feedback" ON feedback FOR INSERT TO anon, authenticated
  WITH CHECK (length(body) > 0);

CREATE VIEW todo_titles AS SELECT id, title, user_id FROM todos;
`;

const SEED = `
INSERT INTO todos (id, title, done, user_id, created_at) VALUES
  (1, 'B: buy milk', 0, '${B}', '2024-01-01T00:00:00Z'),
  (2, 'B: walk dog', 1, '${B}', '2024-01-02T00:00:00Z'),
  (3, 'B: milk the cow', 0, '${B}', '2024-01-03T00:00:00Z');
INSERT INTO todo_notes (id, todo_id, body, user_id) VALUES
  (1, 1, 'B note on 1', '${B}');
INSERT INTO teams (id, name) VALUES (1, 'Red'), (2, 'Blue'), (3, 'Green');
INSERT INTO members (team_id, user_id) VALUES (1, '${A}'), (1, '${B}'), (2, '${B}');
INSERT INTO projects (id, team_id, name, archived) VALUES
  (1, 1, 'red-web', 0),
  (2, 1, 'red-old', 1),
  (3, 2, 'blue-api', 0),
  (4, 3, 'green-x', 0);
INSERT INTO notices (id, body) VALUES (1, 'maintenance on sunday'), (2, 'welcome');
`;

const FUNCTIONS = `
CREATE FUNCTION my_todo_count() RETURNS int STABLE AS $$ SELECT count(*) FROM todos $$;
CREATE FUNCTION search_todos(q text) RETURNS SETOF todos STABLE AS $$ SELECT * FROM todos WHERE title LIKE '%' || :q || '%' $$;
CREATE FUNCTION add_todo(title text) RETURNS todos SECURITY DEFINER AS $$ INSERT INTO todos (title, user_id) VALUES (:title, auth.uid()) RETURNING * $$;
CREATE FUNCTION bad_add(title text) RETURNS void AS $$ INSERT INTO todos (title, user_id) VALUES (:title, auth.uid()) $$;
CREATE FUNCTION whoami() RETURNS text STABLE AS $$ SELECT auth.uid() $$;
CREATE FUNCTION todo_by_id(tid int) RETURNS SETOF todos STABLE SECURITY DEFINER AS $$ SELECT * FROM todos WHERE id = :tid $$;
`;

let srv;
let svc; // service_role: bypasses RLS, used only to check the database
let anon;
let a;
let b;
let c;

const now = () => Math.floor(Date.now() / 1000);

function userJwt(sub, email) {
  return srv.mintJwt({ role: 'authenticated', aud: 'authenticated', sub, email, exp: now() + 3600 });
}

/** What supabase-js does once signed in: apikey = anon key, Authorization = the user's JWT. */
function userClient(sub, email) {
  return srv.client('anon', { global: { headers: { Authorization: `Bearer ${userJwt(sub, email)}` } } });
}

/** Every row of a table, as the database holds it. */
async function all(table, columns = '*', order = 'id') {
  return ok(await svc.from(table).select(columns).order(order));
}

const B_TODOS = [
  { id: 1, title: 'B: buy milk', done: false, user_id: B, created_at: '2024-01-01T00:00:00Z' },
  { id: 2, title: 'B: walk dog', done: true, user_id: B, created_at: '2024-01-02T00:00:00Z' },
  { id: 3, title: 'B: milk the cow', done: false, user_id: B, created_at: '2024-01-03T00:00:00Z' },
];

async function bTodosUnchanged() {
  assert.deepEqual(ok(await svc.from('todos').select('*').eq('user_id', B).lte('id', 3).order('id')), B_TODOS);
}

before(async () => {
  srv = await startServer({
    migrations: { '0001_schema.sql': SCHEMA, '0002_seed.sql': SEED, '0003_functions.sql': FUNCTIONS },
  });
  svc = srv.client('service');
  anon = srv.client('anon');
  a = userClient(A, 'a@example.com');
  b = userClient(B, 'b@example.com');
  c = userClient(C, 'c@example.com');
});
after(async () => {
  await srv?.stop();
});

// Ids of the todos A creates, by title.
const aIds = {};

describe('todos: own rows only', () => {
  test('A inserts; user_id is filled by DEFAULT auth.uid()', async () => {
    const res = await a
      .from('todos')
      .insert([{ title: 'A: write tests' }, { title: 'A: buy milk' }])
      .select('id,title,done,user_id');
    const rows = ok(res, 201);
    assert.equal(rows.length, 2, show(res));
    assert.deepEqual(
      rows.map(({ title, done, user_id }) => ({ title, done, user_id })),
      [
        { title: 'A: write tests', done: false, user_id: A },
        { title: 'A: buy milk', done: false, user_id: A },
      ],
    );
    for (const r of rows) aIds[r.title] = r.id;
    assert.ok(rows.every((r) => r.id > 3), show(res));
    // single-object insert without a representation: 201, no body
    const one = await a.from('todos').insert({ title: 'A: plain insert', done: true });
    assert.equal(one.error, null, show(one));
    assert.equal(one.status, 201, show(one));
    assert.equal(one.data, null, show(one));
    const stored = ok(await svc.from('todos').select('id,user_id,done').eq('title', 'A: plain insert'));
    assert.equal(stored.length, 1);
    assert.equal(stored[0].user_id, A);
    assert.equal(stored[0].done, true);
    aIds['A: plain insert'] = stored[0].id;
  });

  test('A selects only A\'s rows; B only B\'s', async () => {
    const mine = ok(await a.from('todos').select('title,user_id').order('id'), 200);
    assert.deepEqual(mine, [
      { title: 'A: write tests', user_id: A },
      { title: 'A: buy milk', user_id: A },
      { title: 'A: plain insert', user_id: A },
    ]);
    const theirs = ok(await b.from('todos').select('*').order('id'), 200);
    assert.deepEqual(theirs, B_TODOS);
    // C has no todos
    assert.deepEqual(ok(await c.from('todos').select('id'), 200), []);
  });

  test('filters cannot reach other users\' rows', async () => {
    assert.deepEqual(ok(await a.from('todos').select('id').eq('user_id', B)), []);
    assert.deepEqual(ok(await a.from('todos').select('id').eq('id', 1)), []);
    assert.deepEqual(
      ok(await a.from('todos').select('title').or(`user_id.eq.${B},title.ilike.*milk*`).order('id')),
      [{ title: 'A: buy milk' }],
    );
    assert.deepEqual(ok(await a.from('todos').select('title').in('id', [1, 2, 3, aIds['A: buy milk']])), [
      { title: 'A: buy milk' },
    ]);
  });

  test('count exact counts only own rows', async () => {
    const head = await a.from('todos').select('*', { count: 'exact', head: true });
    assert.equal(head.error, null, show(head));
    assert.equal(head.status, 200, show(head));
    assert.equal(head.count, 3, show(head));
    const page = await a.from('todos').select('id', { count: 'exact' }).order('id').limit(1);
    assert.equal(page.count, 3, show(page));
    assert.deepEqual(page.data, [{ id: aIds['A: write tests'] }]);
    const bc = await b.from('todos').select('*', { count: 'exact', head: true });
    assert.equal(bc.count, 3, show(bc));
    const milk = await a.from('todos').select('*', { count: 'exact', head: true }).ilike('title', '%milk%');
    assert.equal(milk.count, 1, show(milk));
    const total = await svc.from('todos').select('*', { count: 'exact', head: true });
    assert.equal(total.count, 6, show(total));
  });

  test('single() on another user\'s row is PGRST116 / 406; maybeSingle() is null', async () => {
    const e = fails(await a.from('todos').select('*').eq('id', 1).single(), 406, 'PGRST116');
    assert.equal(e.details, 'The result contains 0 rows');
    const m = await a.from('todos').select('*').eq('id', 1).maybeSingle();
    assert.equal(m.error, null, show(m));
    assert.equal(m.data, null, show(m));
    // own row through single() works
    const own = ok(await a.from('todos').select('title,user_id').eq('id', aIds['A: buy milk']).single());
    assert.deepEqual(own, { title: 'A: buy milk', user_id: A });
  });

  test('update and delete of B\'s rows affect nothing', async () => {
    const u = await a.from('todos').update({ title: 'pwned', done: true }).eq('id', 1);
    assert.equal(u.error, null, show(u));
    assert.equal(u.status, 204, show(u));
    const u2 = await a.from('todos').update({ title: 'pwned' }, { count: 'exact' }).in('id', [1, 2, 3]).select('id');
    assert.deepEqual(ok(u2, 200), []);
    assert.equal(u2.count, 0, show(u2));
    const all = await a.from('todos').update({ done: true }).eq('user_id', B).select('id');
    assert.deepEqual(ok(all, 200), []);
    const d = await a.from('todos').delete().eq('id', 2);
    assert.equal(d.error, null, show(d));
    assert.equal(d.status, 204, show(d));
    const d2 = await a.from('todos').delete({ count: 'exact' }).lte('id', 3).select('id');
    assert.deepEqual(ok(d2, 200), []);
    assert.equal(d2.count, 0, show(d2));
    await bTodosUnchanged();
  });

  test('an unfiltered update or delete touches only own rows', async () => {
    // Ask for every row: only A's rows come back, and B's rows are untouched.
    const u = await a.from('todos').update({ done: false }).gt('id', 0).select('id,user_id').order('id');
    assert.deepEqual(ok(u, 200).map((r) => r.user_id), [A, A, A]);
    await bTodosUnchanged();
    // rollback(): the delete is reported, then undone
    const d = await a.from('todos').delete().gt('id', 0).select('user_id').rollback();
    assert.deepEqual(ok(d, 200), [{ user_id: A }, { user_id: A }, { user_id: A }]);
    assert.equal(ok(await svc.from('todos').select('id')).length, 6);
  });

  test('update and delete with order + limit pick among own rows only', async () => {
    const first = Math.min(...Object.values(aIds));
    const u = await a.from('todos').update({ done: true }).order('id').limit(1).select('id,user_id');
    assert.deepEqual(ok(u, 200), [{ id: first, user_id: A }]);
    const d = await a.from('todos').delete().order('id').limit(1).select('id').rollback();
    assert.deepEqual(ok(d, 200), [{ id: first }]);
    await bTodosUnchanged();
    ok(await a.from('todos').update({ done: false }).eq('id', first));
    assert.equal(ok(await svc.from('todos').select('id')).length, 6);
  });

  test('A updates and deletes own rows', async () => {
    const id = aIds['A: plain insert'];
    const u = ok(await a.from('todos').update({ title: 'A: edited' }).eq('id', id).select('id,title,user_id').single());
    assert.deepEqual(u, { id, title: 'A: edited', user_id: A });
    const d = ok(await a.from('todos').delete().eq('id', id).select('title'));
    assert.deepEqual(d, [{ title: 'A: edited' }]);
    assert.deepEqual(ok(await svc.from('todos').select('id').eq('id', id)), []);
    delete aIds['A: plain insert'];
  });

  test('inserting a row with user_id of B fails 42501 / 403 and writes nothing', async () => {
    const e = fails(await a.from('todos').insert({ title: 'A forged', user_id: B }), 403, '42501');
    assertErrorShape(e);
    assert.match(e.message, /row-level security/);
    fails(await a.from('todos').insert({ title: 'A forged', user_id: B }).select(), 403, '42501');
    // one bad row in a batch fails the whole batch
    fails(
      await a.from('todos').insert([
        { title: 'A forged ok', user_id: A },
        { title: 'A forged', user_id: B },
      ]),
      403,
      '42501',
    );
    assert.deepEqual(ok(await svc.from('todos').select('id').like('title', 'A forged%')), []);
    assert.equal(ok(await svc.from('todos').select('id')).length, 5);
  });

  test('an update that would give a row to B fails 42501 / 403 and changes nothing', async () => {
    const id = aIds['A: buy milk'];
    fails(await a.from('todos').update({ user_id: B }).eq('id', id), 403, '42501');
    fails(await a.from('todos').update({ user_id: B, title: 'gift' }).eq('id', id).select(), 403, '42501');
    // several rows, one of them given away: nothing changes
    fails(await a.from('todos').update({ user_id: B }).gt('id', 0), 403, '42501');
    assert.deepEqual(ok(await svc.from('todos').select('title,user_id').eq('id', id)), [
      { title: 'A: buy milk', user_id: A },
    ]);
    assert.deepEqual(ok(await svc.from('todos').select('user_id').gt('id', 3)).map((r) => r.user_id), [A, A]);
    await bTodosUnchanged();
  });

  test('upsert onto B\'s row fails 42501 / 403; B\'s row is unchanged', async () => {
    fails(await a.from('todos').upsert({ id: 1, title: 'hijack', user_id: A }), 403, '42501');
    fails(await a.from('todos').upsert({ id: 1, title: 'hijack', user_id: A }).select(), 403, '42501');
    fails(await a.from('todos').upsert({ id: 2, title: 'hijack', user_id: B }), 403, '42501');
    fails(await a.from('todos').upsert([{ id: 3, title: 'hijack' }]), 403, '42501');
    await bTodosUnchanged();
    // ignoreDuplicates onto B's row inserts nothing and changes nothing
    const ig = await a.from('todos').upsert({ id: 1, title: 'hijack', user_id: A }, { ignoreDuplicates: true }).select('id');
    assert.deepEqual(ok(ig, 201), []);
    await bTodosUnchanged();
    assert.equal(ok(await svc.from('todos').select('id')).length, 5);
  });

  test('upsert onto own row merges; upsert of a new id inserts', async () => {
    const id = aIds['A: write tests'];
    const rows = ok(await a.from('todos').upsert({ id, title: 'A: write more tests', user_id: A }).select('id,title,user_id'), 201);
    assert.deepEqual(rows, [{ id, title: 'A: write more tests', user_id: A }]);
    const fresh = ok(await a.from('todos').upsert({ id: 500, title: 'A: upserted', user_id: A }).select('id,user_id'), 201);
    assert.deepEqual(fresh, [{ id: 500, user_id: A }]);
    assert.deepEqual(ok(await svc.from('todos').select('title,user_id').eq('id', 500)), [{ title: 'A: upserted', user_id: A }]);
    ok(await svc.from('todos').delete().eq('id', 500));
  });

  test('anon sees nothing in todos, counts 0, and cannot insert (42501 / 401)', async () => {
    assert.deepEqual(ok(await anon.from('todos').select('*'), 200), []);
    const head = await anon.from('todos').select('*', { count: 'exact', head: true });
    assert.equal(head.status, 200, show(head));
    assert.equal(head.count, 0, show(head));
    fails(await anon.from('todos').insert({ title: 'anon', user_id: A }), 401, '42501');
    const u = await anon.from('todos').update({ title: 'anon' }).gt('id', 0).select('id');
    assert.deepEqual(ok(u, 200), []);
    const d = await anon.from('todos').delete().gt('id', 0).select('id');
    assert.deepEqual(ok(d, 200), []);
    fails(await anon.from('todos').upsert({ id: 1, title: 'anon', user_id: B }), 401, '42501');
    assert.equal(ok(await svc.from('todos').select('id')).length, 5);
    await bTodosUnchanged();
  });

  test('anon insert relying on DEFAULT auth.uid() (NULL) is refused by RLS: 42501 / 401', async () => {
    fails(await anon.from('todos').insert({ title: 'anon default' }), 401, '42501');
    assert.deepEqual(ok(await svc.from('todos').select('id').eq('title', 'anon default')), []);
  });

  test('service_role bypasses RLS: sees and writes every row', async () => {
    const rows = ok(await svc.from('todos').select('user_id').order('id'));
    assert.deepEqual(rows.map((r) => r.user_id), [B, B, B, A, A]);
    const ins = ok(await svc.from('todos').insert({ title: 'svc for B', user_id: B }).select('title,user_id'), 201);
    assert.deepEqual(ins, [{ title: 'svc for B', user_id: B }]);
    assert.deepEqual(ok(await b.from('todos').select('title').eq('title', 'svc for B')), [{ title: 'svc for B' }]);
    ok(await svc.from('todos').delete().eq('title', 'svc for B'));
  });

  test('a user view does not bypass the RLS of its table', async () => {
    // src/policy/mod.rs: every query that names the table (… user views) sees the filtered rows.
    assert.deepEqual(ok(await anon.from('todo_titles').select('id'), 200), []);
    assert.deepEqual(ok(await a.from('todo_titles').select('title,user_id').order('id'), 200), [
      { title: 'A: write more tests', user_id: A },
      { title: 'A: buy milk', user_id: A },
    ]);
    const cnt = await c.from('todo_titles').select('*', { count: 'exact', head: true });
    assert.equal(cnt.count, 0, show(cnt));
  });

  test('aggregates count only visible rows', async () => {
    assert.deepEqual(ok(await a.from('todos').select('count()')), [{ count: 2 }]);
    assert.deepEqual(ok(await b.from('todos').select('user_id,count()')), [{ user_id: B, count: 3 }]);
    assert.deepEqual(ok(await anon.from('todos').select('count()')), [{ count: 0 }]);
    assert.deepEqual(ok(await anon.from('todos').select('user_id,count()')), []);
    assert.deepEqual(ok(await b.from('todos').select('id.max()')), [{ max: 3 }]);
    assert.deepEqual(ok(await svc.from('todos').select('count()')), [{ count: 5 }]);
  });
});

describe('embedded resources are filtered by their own policies', () => {
  test('A sees own notes only, embedded on own todos', async () => {
    const tid = aIds['A: buy milk'];
    ok(await a.from('todo_notes').insert({ todo_id: tid, body: 'A note' }), 201);
    // B's note on B's todo 1 is invisible to A, in either direction
    assert.deepEqual(ok(await a.from('todo_notes').select('body,user_id')), [{ body: 'A note', user_id: A }]);
    const todos = ok(await a.from('todos').select('title,todo_notes(body)').order('id'));
    assert.deepEqual(todos, [
      { title: 'A: write more tests', todo_notes: [] },
      { title: 'A: buy milk', todo_notes: [{ body: 'A note' }] },
    ]);
    assert.deepEqual(ok(await b.from('todos').select('id,todo_notes(body)').eq('id', 1)), [
      { id: 1, todo_notes: [{ body: 'B note on 1' }] },
    ]);
  });

  test('a visible child embeds its parent only when the parent is visible too', async () => {
    // A note by A attached to B's todo: A may see the note (own), but not the todo it points to.
    ok(await svc.from('todo_notes').insert({ id: 50, todo_id: 2, body: 'A note on B todo', user_id: A }));
    const rows = ok(await a.from('todo_notes').select('body,todos(title)').eq('id', 50));
    assert.deepEqual(rows, [{ body: 'A note on B todo', todos: null }]);
    // !inner drops it
    assert.deepEqual(ok(await a.from('todo_notes').select('body,todos!inner(title)').eq('id', 50)), []);
    const bView = ok(await b.from('todos').select('id,todo_notes(body)').eq('id', 2));
    assert.deepEqual(bView, [{ id: 2, todo_notes: [] }]);
    ok(await svc.from('todo_notes').delete().eq('id', 50));
  });

  test('teams through membership (EXISTS over members, which has its own policy)', async () => {
    assert.deepEqual(ok(await a.from('teams').select('id,name').order('id')), [{ id: 1, name: 'Red' }]);
    assert.deepEqual(ok(await b.from('teams').select('id,name').order('id')), [
      { id: 1, name: 'Red' },
      { id: 2, name: 'Blue' },
    ]);
    assert.deepEqual(ok(await c.from('teams').select('id')), []);
    // members: each user sees their own membership rows only, even embedded under a shared team
    assert.deepEqual(ok(await a.from('teams').select('name,members(user_id)')), [
      { name: 'Red', members: [{ user_id: A }] },
    ]);
    assert.deepEqual(ok(await svc.from('teams').select('name,members(user_id)').eq('id', 1)), [
      { name: 'Red', members: [{ user_id: A }, { user_id: B }] },
    ]);
  });

  test('projects readable by team members; the restrictive policy hides archived ones', async () => {
    assert.deepEqual(ok(await a.from('projects').select('id,name').order('id')), [{ id: 1, name: 'red-web' }]);
    assert.deepEqual(ok(await b.from('projects').select('id,name').order('id')), [
      { id: 1, name: 'red-web' },
      { id: 3, name: 'blue-api' },
    ]);
    assert.deepEqual(ok(await c.from('projects').select('id')), []);
    assert.deepEqual(ok(await anon.from('projects').select('id')), []);
    const cnt = await b.from('projects').select('*', { count: 'exact', head: true });
    assert.equal(cnt.count, 2, show(cnt));
    // embedded both ways
    assert.deepEqual(ok(await b.from('teams').select('name,projects(name)').order('id')), [
      { name: 'Red', projects: [{ name: 'red-web' }] },
      { name: 'Blue', projects: [{ name: 'blue-api' }] },
    ]);
    assert.deepEqual(ok(await a.from('projects').select('name,teams(name)')), [
      { name: 'red-web', teams: { name: 'Red' } },
    ]);
    // !inner on a hidden embed: A's team list filtered to teams with a visible 'blue' project
    assert.deepEqual(ok(await a.from('teams').select('name,projects!inner(name)').eq('projects.name', 'blue-api')), []);
  });

  test('project writes: WITH CHECK membership, and the restrictive policy on insert and update', async () => {
    // member inserts into own team
    const p = ok(await a.from('projects').insert({ team_id: 1, name: 'red-new' }).select('team_id,name,archived'), 201);
    assert.deepEqual(p, [{ team_id: 1, name: 'red-new', archived: false }]);
    // not a member of team 2
    fails(await a.from('projects').insert({ team_id: 2, name: 'sneaky' }), 403, '42501');
    // archived rows fail the restrictive policy even for a member
    fails(await a.from('projects').insert({ team_id: 1, name: 'born-archived', archived: true }), 403, '42501');
    // archiving through an update leaves a row that fails the restrictive WITH CHECK
    fails(await a.from('projects').update({ archived: true }).eq('name', 'red-new'), 403, '42501');
    // the archived project cannot be revived: it is not visible to the update
    const revive = await b.from('projects').update({ archived: false }).eq('id', 2).select('id');
    assert.deepEqual(ok(revive, 200), []);
    // a non-member's update affects nothing
    assert.deepEqual(ok(await c.from('projects').update({ name: 'x' }).gt('id', 0).select('id')), []);
    // there is no DELETE policy: nothing is deleted, even for members
    assert.deepEqual(ok(await a.from('projects').delete().eq('name', 'red-new').select('id')), []);
    assert.deepEqual(ok(await svc.from('projects').select('id,team_id,name,archived').order('id')).map((r) => [r.team_id, r.name, r.archived]), [
      [1, 'red-web', false],
      [1, 'red-old', true],
      [2, 'blue-api', false],
      [3, 'green-x', false],
      [1, 'red-new', false],
    ]);
    // a member may rename a live project
    assert.deepEqual(ok(await b.from('projects').update({ name: 'blue-api2' }).eq('id', 3).select('name')), [{ name: 'blue-api2' }]);
  });

  test('insert-only policy: inserting works, returning the row needs SELECT (42501) and writes nothing', async () => {
    const sent = await anon.from('feedback').insert({ body: 'anon says hi' });
    assert.equal(sent.error, null, show(sent));
    assert.equal(sent.status, 201, show(sent));
    // WITH CHECK refuses an empty body
    fails(await anon.from('feedback').insert({ body: '' }), 401, '42501');
    fails(await a.from('feedback').insert({ body: '' }), 403, '42501');
    // asking for the row back needs a SELECT policy: the whole insert fails
    fails(await anon.from('feedback').insert({ body: 'anon wants it back' }).select(), 401, '42501');
    fails(await a.from('feedback').insert({ body: 'A wants it back' }).select('id'), 403, '42501');
    ok(await a.from('feedback').insert([{ body: 'A one' }, { body: 'A two' }]), 201);
    // nobody but service_role reads it
    assert.deepEqual(ok(await anon.from('feedback').select('*'), 200), []);
    assert.deepEqual(ok(await a.from('feedback').select('*'), 200), []);
    assert.deepEqual(ok(await svc.from('feedback').select('body').order('id')), [
      { body: 'anon says hi' },
      { body: 'A one' },
      { body: 'A two' },
    ]);
    // no UPDATE / DELETE policy
    assert.deepEqual(ok(await a.from('feedback').delete().gt('id', 0).select('id')), []);
    assert.equal(ok(await svc.from('feedback').select('id')).length, 3);
  });

  test('embedded counts and filters on hidden embeds see only visible rows', async () => {
    assert.deepEqual(ok(await b.from('teams').select('name,projects(count)').order('id')), [
      { name: 'Red', projects: [{ count: 2 }] },
      { name: 'Blue', projects: [{ count: 1 }] },
    ]);
    // A cannot use team 3 (hidden) to filter projects, nor see green-x through it
    assert.deepEqual(ok(await a.from('projects').select('id,teams!inner(name)').eq('teams.name', 'Green')), []);
    assert.deepEqual(ok(await svc.from('projects').select('id,teams!inner(name)').eq('teams.name', 'Green')), [
      { id: 4, teams: { name: 'Green' } },
    ]);
  });

  test('the OpenAPI document lists, for each role, only tables it may read', async () => {
    const paths = async (client) => {
      const r = await client.getOpenApiSpec();
      assert.equal(r.error, null, JSON.stringify(r.error));
      return Object.keys(r.data.paths).filter((p) => p !== '/' && !p.startsWith('/rpc/')).sort();
    };
    assert.deepEqual(await paths(anon), ['/notices', '/todo_titles']);
    assert.deepEqual(await paths(a), ['/members', '/notices', '/projects', '/teams', '/todo_notes', '/todo_titles', '/todos']);
    assert.deepEqual(await paths(svc), [
      '/feedback', '/members', '/notices', '/projects', '/teams', '/todo_notes', '/todo_titles', '/todos',
    ]);
  });

  test('a table with RLS disabled is readable by anon', async () => {
    const rows = ok(await anon.from('notices').select('id,body').order('id'), 200);
    assert.deepEqual(rows, [
      { id: 1, body: 'maintenance on sunday' },
      { id: 2, body: 'welcome' },
    ]);
    const cnt = await anon.from('notices').select('*', { count: 'exact', head: true });
    assert.equal(cnt.count, 2, show(cnt));
    assert.deepEqual(ok(await a.from('notices').select('id').order('id')), [{ id: 1 }, { id: 2 }]);
  });
});

describe('concurrency', () => {
  test('interleaved requests of A and B never mix rows', async () => {
    const reqs = [];
    for (let i = 0; i < 30; i++) {
      reqs.push(a.from('todos').select('user_id').then((r) => ['A', 'select', r]));
      reqs.push(b.from('todos').select('user_id').then((r) => ['B', 'select', r]));
      reqs.push(a.rpc('my_todo_count').then((r) => ['A', 'count', r]));
      reqs.push(b.rpc('whoami').then((r) => ['B', 'whoami', r]));
      if (i % 5 === 0) {
        reqs.push(a.from('todos').insert({ title: `A conc ${i}` }).select('user_id').then((r) => ['A', 'insert', r]));
        reqs.push(b.from('todos').insert({ title: `B conc ${i}` }).select('user_id').then((r) => ['B', 'insert', r]));
      }
      reqs.push(anon.from('todos').select('id').then((r) => ['anon', 'select', r]));
    }
    const results = await Promise.all(reqs);
    for (const [who, what, r] of results) {
      assert.equal(r.error, null, `${who} ${what}: ${show(r)}`);
      if (who === 'anon') {
        assert.deepEqual(r.data, [], `anon saw rows: ${show(r)}`);
        continue;
      }
      const uid = who === 'A' ? A : B;
      if (what === 'whoami') assert.equal(r.data, uid, show(r));
      else if (what === 'count') assert.ok(r.data >= 2 && r.data <= 8, `A count ${show(r)}`);
      else {
        assert.ok(r.data.length > 0, show(r));
        for (const row of r.data) assert.equal(row.user_id, uid, `${who} ${what} got a row of another user: ${show(r)}`);
      }
    }
    const conc = ok(await svc.from('todos').select('title,user_id').like('title', '% conc %').order('id'));
    assert.equal(conc.length, 12);
    for (const r of conc) assert.equal(r.user_id, r.title.startsWith('A') ? A : B, JSON.stringify(r));
    ok(await svc.from('todos').delete().like('title', '% conc %'));
  });
});

describe('rpc', () => {
  test('scalar result is a number, counted under the caller\'s RLS', async () => {
    const ra = await a.rpc('my_todo_count');
    assert.equal(ra.error, null, show(ra));
    assert.equal(ra.status, 200, show(ra));
    assert.strictEqual(ra.data, 2);
    assert.strictEqual(ok(await b.rpc('my_todo_count')), 3);
    assert.strictEqual(ok(await c.rpc('my_todo_count')), 0);
    assert.strictEqual(ok(await anon.rpc('my_todo_count')), 0);
    assert.strictEqual(ok(await svc.rpc('my_todo_count')), 5);
  });

  test('auth.uid() inside a function is the caller', async () => {
    assert.strictEqual(ok(await a.rpc('whoami')), A);
    assert.strictEqual(ok(await b.rpc('whoami', {}, { get: true })), B);
    assert.strictEqual(ok(await anon.rpc('whoami')), null);
  });

  test('SETOF with select, eq, order, limit: only the caller\'s rows', async () => {
    const res = await b.rpc('search_todos', { q: 'milk' }).select('id,title').eq('done', false).order('id', { ascending: false }).limit(1);
    assert.deepEqual(ok(res, 200), [{ id: 3, title: 'B: milk the cow' }]);
    const all = ok(await b.rpc('search_todos', { q: 'milk' }).select('id,title').order('id'));
    assert.deepEqual(all, [
      { id: 1, title: 'B: buy milk' },
      { id: 3, title: 'B: milk the cow' },
    ]);
    // A's search over the same words finds only A's row
    assert.deepEqual(ok(await a.rpc('search_todos', { q: 'milk' }).select('title,user_id')), [
      { title: 'A: buy milk', user_id: A },
    ]);
    assert.deepEqual(ok(await anon.rpc('search_todos', { q: 'milk' })), []);
    // full rows by default
    assert.deepEqual(ok(await b.rpc('search_todos', { q: 'walk' })), [B_TODOS[1]]);
  });

  test('count: exact on a SETOF function counts the caller\'s rows', async () => {
    const res = await b.rpc('search_todos', { q: '' }, { count: 'exact' }).select('id').order('id').limit(2);
    assert.equal(res.error, null, show(res));
    assert.equal(res.count, 3, show(res));
    assert.deepEqual(res.data, [{ id: 1 }, { id: 2 }]);
    const ra = await a.rpc('search_todos', { q: '' }, { count: 'exact' });
    assert.equal(ra.count, 2, show(ra));
    assert.equal(ra.data.length, 2, show(ra));
  });

  test('get: true calls stable functions with GET and query-string arguments', async () => {
    const res = await b.rpc('search_todos', { q: 'milk' }, { get: true }).select('id').order('id');
    assert.deepEqual(ok(res, 200), [{ id: 1 }, { id: 3 }]);
    assert.strictEqual(ok(await a.rpc('my_todo_count', {}, { get: true })), 2);
    // a filter on the result beside the argument
    assert.deepEqual(ok(await b.rpc('search_todos', { q: 'B' }, { get: true }).select('id').eq('done', true)), [{ id: 2 }]);
  });

  test('head: true answers no body, with the count', async () => {
    const res = await b.rpc('search_todos', { q: 'milk' }, { head: true, count: 'exact' });
    assert.equal(res.error, null, show(res));
    assert.equal(res.status, 200, show(res));
    assert.equal(res.data, null, show(res));
    assert.equal(res.count, 2, show(res));
    const ra = await a.rpc('search_todos', { q: '' }, { head: true, count: 'exact' });
    assert.equal(ra.count, 2, show(ra));
  });

  test('SECURITY DEFINER insert returns one object whose user_id is the caller', async () => {
    const res = await a.rpc('add_todo', { title: 'A via rpc' });
    const row = ok(res, 200);
    assert.equal(Array.isArray(row), false, show(res));
    assert.equal(typeof row.id, 'number', show(res));
    assert.deepEqual(
      { title: row.title, user_id: row.user_id, done: row.done },
      { title: 'A via rpc', user_id: A, done: false },
    );
    const rb = ok(await b.rpc('add_todo', { title: 'B via rpc' }));
    assert.equal(rb.user_id, B);
    assert.deepEqual(ok(await svc.from('todos').select('id,user_id').eq('title', 'A via rpc')), [{ id: row.id, user_id: A }]);
    assert.strictEqual(ok(await a.rpc('my_todo_count')), 3);
    // anon has no uid: the definer insert hits NOT NULL
    fails(await anon.rpc('add_todo', { title: 'anon via rpc' }), 400, '23502');
    assert.deepEqual(ok(await svc.from('todos').select('id').eq('title', 'anon via rpc')), []);
    ok(await svc.from('todos').delete().like('title', '% via rpc'));
  });

  test('a SECURITY DEFINER SETOF function returns rows past RLS (the caller asked for them by id)', async () => {
    assert.deepEqual(ok(await a.rpc('todo_by_id', { tid: 1 }).select('id,title,user_id')), [
      { id: 1, title: 'B: buy milk', user_id: B },
    ]);
    // an invoker function over the same rows sees nothing of B's
    assert.deepEqual(ok(await a.rpc('search_todos', { q: 'B: buy' })), []);
  });

  test('embeds on a SECURITY DEFINER function\'s rows still apply the caller\'s RLS', async () => {
    // B's note on todo 1 is not A's: in Postgres only the function body runs as the definer.
    assert.deepEqual(ok(await a.rpc('todo_by_id', { tid: 1 }).select('id,todo_notes(body)')), [
      { id: 1, todo_notes: [] },
    ]);
  });

  test('SETOF results embed resources under the caller\'s RLS', async () => {
    assert.deepEqual(ok(await b.rpc('search_todos', { q: 'milk' }).select('id,todo_notes(body)').order('id')), [
      { id: 1, todo_notes: [{ body: 'B note on 1' }] },
      { id: 3, todo_notes: [] },
    ]);
  });

  test('a volatile function cannot be called with GET, and writes nothing', async () => {
    const res = await a.rpc('add_todo', { title: 'A via get' }, { get: true });
    assert.equal(res.status, 405, show(res));
    assert.notEqual(res.error, null, show(res));
    assert.deepEqual(ok(await svc.from('todos').select('id').eq('title', 'A via get')), []);
  });

  test('an invoker function writing to an RLS table fails 42501 and writes nothing', async () => {
    const e = fails(await a.rpc('bad_add', { title: 'A bad add' }), 403, '42501');
    assertErrorShape(e);
    fails(await b.rpc('bad_add', { title: 'B bad add' }, { count: 'exact' }), 403, '42501');
    assert.deepEqual(ok(await svc.from('todos').select('id').like('title', '%bad add')), []);
    // service_role bypasses RLS, so the same function works for it (auth.uid() is NULL though)
    fails(await svc.rpc('bad_add', { title: 'svc bad add' }), 400, '23502');
  });

  test('anon calling an invoker function that writes to an RLS table gets 42501 / 401', async () => {
    fails(await anon.rpc('bad_add', { title: 'anon bad add' }), 401, '42501');
    assert.deepEqual(ok(await svc.from('todos').select('id').like('title', '%bad add')), []);
  });

  test('unknown function is PGRST202 / 404', async () => {
    const e = fails(await a.rpc('no_such_function'), 404, 'PGRST202');
    assertErrorShape(e);
    fails(await anon.rpc('no_such_function', { x: 1 }), 404, 'PGRST202');
    fails(await a.rpc('no_such_function', {}, { get: true }), 404, 'PGRST202');
  });

  test('missing or unknown argument is 22023 / 400', async () => {
    const missing = fails(await a.rpc('search_todos', {}), 400, '22023');
    assertErrorShape(missing);
    fails(await a.rpc('search_todos', { q: 'x', nope: 1 }), 400, '22023');
    fails(await a.rpc('search_todos', { query: 'x' }), 400, '22023');
    fails(await a.rpc('my_todo_count', { extra: 1 }), 400, '22023');
    fails(await a.rpc('add_todo', {}), 400, '22023');
    assert.deepEqual(ok(await svc.from('todos').select('id').is('title', null)), []);
  });

  test('rpc over plain HTTP: Content-Range on SETOF, 204 for void', async () => {
    const jwt = userJwt(B, 'b@example.com');
    const r = await rest(srv, '/rpc/search_todos?select=id&order=id', {
      method: 'POST',
      key: srv.anonKey,
      headers: { Authorization: `Bearer ${jwt}`, Prefer: 'count=exact' },
      body: { q: 'milk' },
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, [{ id: 1 }, { id: 3 }]);
    assert.equal(r.headers.get('content-range'), '0-1/2');
  });
});

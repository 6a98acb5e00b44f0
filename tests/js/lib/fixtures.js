// Shared schema + seed data for the read-side suites (select, filters, embeds).
// Seeded through migrations so read tests do not depend on the write path.

export const BLOG_SCHEMA = `
CREATE TABLE authors (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  country TEXT
);

CREATE TABLE posts (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  published BOOLEAN NOT NULL DEFAULT 0,
  meta JSON,
  tags JSON,
  author_id INTEGER REFERENCES authors(id),
  created_at TEXT DEFAULT (now()),
  uid TEXT DEFAULT (gen_random_uuid()),
  score REAL,
  CHECK (length(title) > 0)
);

CREATE TABLE comments (
  id INTEGER PRIMARY KEY,
  post_id INTEGER NOT NULL REFERENCES posts(id),
  body TEXT NOT NULL,
  votes INTEGER NOT NULL DEFAULT 0
);

-- Two foreign keys to the same table: embedding "authors" from here is ambiguous.
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  sender_id INTEGER NOT NULL REFERENCES authors(id),
  receiver_id INTEGER NOT NULL REFERENCES authors(id),
  text TEXT NOT NULL
);
`;

export const BLOG_SEED = `
INSERT INTO authors (id, name, country) VALUES
  (1, 'Ada', 'UK'),
  (2, 'Brian', 'US'),
  (3, 'Chen', NULL);

INSERT INTO posts (id, title, published, meta, tags, author_id, created_at, uid, score) VALUES
  (1, 'Hello World', 1, '{"a":1,"b":"x","nested":{"k":"v"}}', '["red","green"]', 1,
      '2024-01-01T00:00:00Z', '00000000-0000-4000-8000-000000000001', 4.5),
  (2, 'Second post', 0, '{"a":2,"b":"y"}', '["blue"]', 1,
      '2024-01-02T00:00:00Z', '00000000-0000-4000-8000-000000000002', NULL),
  (3, 'Rust, SQLite and you', 1, NULL, '["red","blue"]', 2,
      '2024-01-03T00:00:00Z', '00000000-0000-4000-8000-000000000003', 3.0),
  (4, 'draft: untitled', 0, '{"a":3}', '[]', NULL,
      '2024-01-04T00:00:00Z', '00000000-0000-4000-8000-000000000004', 1.25),
  (5, 'Zebra 100%', 1, '{"b":"z"}', '["green"]', 2,
      '2024-01-05T00:00:00Z', '00000000-0000-4000-8000-000000000005', 2);

INSERT INTO comments (id, post_id, body, votes) VALUES
  (1, 1, 'First!', 3),
  (2, 1, 'Nice', 5),
  (3, 3, 'Great read', 1),
  (4, 3, 'meh', 0),
  (5, 5, 'ok', 2);

INSERT INTO messages (id, sender_id, receiver_id, text) VALUES
  (1, 1, 2, 'hi Brian'),
  (2, 2, 1, 'hi Ada');
`;

export const BLOG_MIGRATIONS = {
  '0001_blog_schema.sql': BLOG_SCHEMA,
  '0002_blog_seed.sql': BLOG_SEED,
};

/** The seeded posts exactly as the API must return them with select=*. */
export const POSTS = [
  {
    id: 1, title: 'Hello World', published: true, meta: { a: 1, b: 'x', nested: { k: 'v' } },
    tags: ['red', 'green'], author_id: 1, created_at: '2024-01-01T00:00:00Z',
    uid: '00000000-0000-4000-8000-000000000001', score: 4.5,
  },
  {
    id: 2, title: 'Second post', published: false, meta: { a: 2, b: 'y' },
    tags: ['blue'], author_id: 1, created_at: '2024-01-02T00:00:00Z',
    uid: '00000000-0000-4000-8000-000000000002', score: null,
  },
  {
    id: 3, title: 'Rust, SQLite and you', published: true, meta: null,
    tags: ['red', 'blue'], author_id: 2, created_at: '2024-01-03T00:00:00Z',
    uid: '00000000-0000-4000-8000-000000000003', score: 3,
  },
  {
    id: 4, title: 'draft: untitled', published: false, meta: { a: 3 },
    tags: [], author_id: null, created_at: '2024-01-04T00:00:00Z',
    uid: '00000000-0000-4000-8000-000000000004', score: 1.25,
  },
  {
    id: 5, title: 'Zebra 100%', published: true, meta: { b: 'z' },
    tags: ['green'], author_id: 2, created_at: '2024-01-05T00:00:00Z',
    uid: '00000000-0000-4000-8000-000000000005', score: 2,
  },
];

/** Assert helper input: the `id`s of a result, in order. */
export function ids(data) {
  if (!Array.isArray(data)) throw new Error(`expected an array, got ${JSON.stringify(data)}`);
  return data.map((r) => r.id);
}

-- Row changes of published tables, written in the same transaction as the changes while the
-- database is replicated, so read replicas that apply the pages can publish them to their own
-- realtime subscribers. Rows are pruned after a few minutes.
CREATE TABLE _outpost_realtime_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,        -- ms since the Unix epoch
    commit_timestamp TEXT NOT NULL,
    changes TEXT NOT NULL               -- JSON array of row changes
);

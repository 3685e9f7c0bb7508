-- Priorities and unique keys. The claim walks an index in claim order (higher priority
-- first, then creation, then id), so the two claim indexes gain `priority DESC` in front of
-- the creation order: no Sort, whatever the mix of priorities. Keys are enforced by the
-- database: a partial unique index over the states that hold a key (waiting or retained);
-- tasks without a key are not in it, so they pay nothing for it.
ALTER TABLE tasks
    ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    ADD COLUMN unique_key TEXT;

DROP INDEX tasks_retainable_by_queue;
DROP INDEX tasks_retainable;
CREATE INDEX tasks_retainable_by_queue ON tasks (namespace, queue, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE INDEX tasks_retainable ON tasks (namespace, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE UNIQUE INDEX tasks_unique_key ON tasks (namespace, queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('new', 'retry', 'retained');

ALTER TABLE tickers
    ADD COLUMN priority SMALLINT CHECK (priority BETWEEN -100 AND 100);

ALTER TABLE tickers DROP COLUMN priority;
DROP INDEX tasks_unique_key;
DROP INDEX tasks_retainable;
DROP INDEX tasks_retainable_by_queue;
CREATE INDEX tasks_retainable_by_queue ON tasks (namespace, queue, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE INDEX tasks_retainable ON tasks (namespace, created_at, id)
    WHERE state IN ('new', 'retry');
ALTER TABLE tasks DROP COLUMN unique_key, DROP COLUMN priority;

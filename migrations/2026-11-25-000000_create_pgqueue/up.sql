-- pgqueue's schema. Durations are BIGINT nanoseconds (the wire form); timestamps are
-- timestamptz (microseconds), and every duration is added as whole microseconds, exactly like
-- the domain's `time::add`.

CREATE TABLE queues (
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    ttl         BIGINT  NOT NULL CHECK (ttl > 0),
    retries     INTEGER NOT NULL CHECK (retries BETWEEN 0 AND 1000),
    retry_delay BIGINT  NOT NULL CHECK (retry_delay >= 0),
    lease       BIGINT  NOT NULL CHECK (lease > 0),
    PRIMARY KEY (namespace, name)
);

CREATE TABLE tasks (
    id               BIGSERIAL   PRIMARY KEY,
    namespace        TEXT        NOT NULL,
    queue            TEXT        NOT NULL,
    payload          JSONB       NOT NULL,
    result           JSONB,
    worker           TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    delayed_at       TIMESTAMPTZ,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    dies_at          TIMESTAMPTZ NOT NULL,
    lease_expires_at TIMESTAMPTZ,
    retries          INTEGER     NOT NULL,
    max_retries      INTEGER     NOT NULL CHECK (max_retries BETWEEN 0 AND 1000),
    state            TEXT        NOT NULL
        CHECK (state IN ('new', 'retained', 'retry', 'released', 'failed')),
    CHECK (retries BETWEEN 0 AND max_retries),
    -- Deleting a queue deletes its tasks; renaming it carries them along.
    FOREIGN KEY (namespace, queue) REFERENCES queues (namespace, name)
        ON DELETE CASCADE ON UPDATE CASCADE
) WITH (
    -- Tasks churn (insert, a few updates, delete): vacuum and analyse far more eagerly than
    -- the defaults (20% / 10% of the table) so dead tuples do not bloat the claim indexes.
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0,
    fillfactor = 90
);

-- Retain from given queues: exactly the retainable rows, in claim order.
CREATE INDEX tasks_retainable_by_queue ON tasks (namespace, queue, created_at, id)
    WHERE state IN ('new', 'retry');
-- Retain from any queue of a namespace (an empty queue list).
CREATE INDEX tasks_retainable ON tasks (namespace, created_at, id)
    WHERE state IN ('new', 'retry');
-- Lease rescue: retained rows by lease end.
CREATE INDEX tasks_lease ON tasks (lease_expires_at)
    WHERE state = 'retained';
-- Clean-up of finished tasks by when they finished.
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('released', 'failed');
-- Clean-up of expired tasks (unfinished rows past dies_at).
CREATE INDEX tasks_dies ON tasks (dies_at)
    WHERE state IN ('new', 'retry', 'retained');
-- Listings and counts of one queue (list_tasks ?queue=, queue_statuses, clean_queue); also
-- serves the foreign key's cascades.
CREATE INDEX tasks_queue ON tasks (namespace, queue, id);

CREATE TABLE tickers (
    namespace   TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    payload     JSONB       NOT NULL,
    "interval"  BIGINT      NOT NULL CHECK ("interval" > 0),
    "timestamp" TIMESTAMPTZ,
    -- No foreign key: the queue may be deleted later; the maturity is then skipped.
    queue       TEXT,
    PRIMARY KEY (namespace, name)
);

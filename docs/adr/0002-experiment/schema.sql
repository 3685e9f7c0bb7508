-- Three storage shapes of ADR 0002, reduced to what the hot path touches.
-- a_: today's (rows updated in place; the seven indexes of `tasks`).
-- b_: option B (the release moves the row to a history table; no `tasks_finished`).
-- c_: option C's upper bound (immutable ready rows claimed by a sequence cursor, a narrow
--     lease table, a narrow history). Drain only: no concurrent inserts, so the cursor's
--     commit-order race, which a real C must solve, does not arise here.
-- d (d.sql): C's tables, the claim serialised per lane by a lock on its head row (c_head).
-- e_ (e.sql): a's table whose claim walks fresh tasks from a floor and merges a late set:
--     the claim index split in two (fresh by id; late by creation), the other five as a's.
DROP TABLE IF EXISTS a_tasks, b_tasks, e_tasks, b_history, c_ready, c_leases, c_history, c_head;
DROP SEQUENCE IF EXISTS c_pos;

CREATE TABLE a_tasks (
    id BIGSERIAL PRIMARY KEY, namespace TEXT NOT NULL, queue TEXT NOT NULL,
    priority INT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    state TEXT NOT NULL DEFAULT 'new', unique_key TEXT, worker TEXT,
    lease_expires_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, retries INT NOT NULL DEFAULT 3,
    payload JSONB NOT NULL, result JSONB
) WITH (fillfactor = 90, autovacuum_enabled = off);
CREATE INDEX a_retainable_by_queue ON a_tasks (namespace, queue, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE INDEX a_retainable ON a_tasks (namespace, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE UNIQUE INDEX a_unique_key ON a_tasks (namespace, queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('new', 'retry', 'retained');
CREATE INDEX a_finished ON a_tasks (finished_at) WHERE state IN ('released', 'failed', 'cancelled');
CREATE INDEX a_retained ON a_tasks (namespace, queue, lease_expires_at) WHERE state = 'retained';
CREATE INDEX a_queue ON a_tasks (namespace, queue, id);

CREATE TABLE b_tasks (LIKE a_tasks INCLUDING DEFAULTS) WITH (fillfactor = 90, autovacuum_enabled = off);
ALTER TABLE b_tasks ADD PRIMARY KEY (id);
ALTER TABLE b_tasks ALTER COLUMN id SET DEFAULT nextval('a_tasks_id_seq');
CREATE INDEX b_retainable_by_queue ON b_tasks (namespace, queue, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE INDEX b_retainable ON b_tasks (namespace, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE UNIQUE INDEX b_unique_key ON b_tasks (namespace, queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('new', 'retry', 'retained');
CREATE INDEX b_retained ON b_tasks (namespace, queue, lease_expires_at) WHERE state = 'retained';
CREATE INDEX b_queue ON b_tasks (namespace, queue, id);
CREATE TABLE b_history (LIKE a_tasks) WITH (autovacuum_enabled = off);
ALTER TABLE b_history ADD PRIMARY KEY (id);
CREATE INDEX b_history_queue ON b_history (namespace, queue, id);

CREATE SEQUENCE c_pos;
CREATE TABLE c_ready (
    seq BIGINT PRIMARY KEY, namespace TEXT NOT NULL, queue TEXT NOT NULL,
    priority INT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload JSONB NOT NULL
) WITH (autovacuum_enabled = off);
CREATE TABLE c_leases (
    id BIGINT PRIMARY KEY, worker TEXT NOT NULL, lease_expires_at TIMESTAMPTZ NOT NULL
) WITH (autovacuum_enabled = off);
CREATE INDEX c_leases_expiry ON c_leases (lease_expires_at);
CREATE TABLE c_history (
    id BIGINT PRIMARY KEY, namespace TEXT NOT NULL, queue TEXT NOT NULL, state TEXT NOT NULL,
    worker TEXT, finished_at TIMESTAMPTZ NOT NULL, result JSONB
) WITH (autovacuum_enabled = off);
-- One lane's head row: shape d's claim locks it (awa's queue_claim_heads).
CREATE TABLE c_head (lane INT PRIMARY KEY);
INSERT INTO c_head VALUES (1);

CREATE TABLE e_tasks (LIKE a_tasks INCLUDING DEFAULTS) WITH (fillfactor = 90, autovacuum_enabled = off);
ALTER TABLE e_tasks ADD PRIMARY KEY (id);
ALTER TABLE e_tasks ADD COLUMN late BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE e_tasks ALTER COLUMN id SET DEFAULT nextval('a_tasks_id_seq');
CREATE INDEX e_fresh_by_queue ON e_tasks (namespace, queue, priority DESC, id)
    WHERE state = 'new' AND NOT late;
CREATE INDEX e_late_by_queue ON e_tasks (namespace, queue, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry') AND late;
CREATE INDEX e_retainable ON e_tasks (namespace, priority DESC, created_at, id)
    WHERE state IN ('new', 'retry');
CREATE UNIQUE INDEX e_unique_key ON e_tasks (namespace, queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('new', 'retry', 'retained');
CREATE INDEX e_finished ON e_tasks (finished_at) WHERE state IN ('released', 'failed', 'cancelled');
CREATE INDEX e_retained ON e_tasks (namespace, queue, lease_expires_at) WHERE state = 'retained';
CREATE INDEX e_queue ON e_tasks (namespace, queue, id);

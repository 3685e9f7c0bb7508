-- The event stream (docs/events.md). Every statement that changes tasks inserts ONE row here,
-- in the same statement, holding that statement's events as parallel arrays (element i is
-- one event); a statement changing 100 tasks writes one row, not 100.
--
-- Rows are inserted unnumbered (last_id NULL): ids taken from a sequence at insert time
-- would let a reader see id 7 commit before id 6 and skip 6. A sequencer (any reader, one at
-- a time under an advisory lock) numbers the committed rows in insertion order, giving each
-- row a contiguous range of event ids that ends at last_id: a reader that saw id N has seen
-- every id below N, and a late commit only ever gets ids above everything numbered before.
CREATE TABLE task_events (
    id         BIGSERIAL,
    last_id    BIGINT,
    at         TIMESTAMPTZ NOT NULL,
    namespaces TEXT[]      NOT NULL,
    queues     TEXT[]      NOT NULL,
    -- NULL elements for queue events (paused, resumed).
    tasks      BIGINT[]    NOT NULL,
    kinds      TEXT[]      NOT NULL,
    statuses   TEXT[]      NOT NULL,
    CHECK (cardinality(kinds) > 0)
) WITH (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX task_events_unnumbered ON task_events (id) WHERE last_id IS NULL;
CREATE UNIQUE INDEX task_events_by_id ON task_events (last_id);

-- The newest event id given out. One row.
CREATE TABLE task_event_head (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    last_id  BIGINT  NOT NULL
);
INSERT INTO task_event_head (last_id) VALUES (0);

-- Operating the queue: a task can be cancelled (a terminal state of its own, or a request
-- to the worker holding it), and queues and tickers can be paused. Cancelled tasks are
-- cleaned up like other ended tasks, so the clean-up index covers them.
ALTER TABLE tasks
    DROP CONSTRAINT tasks_state_check,
    ADD CONSTRAINT tasks_state_check
        CHECK (state IN ('new', 'retained', 'retry', 'released', 'failed', 'cancelled')),
    ADD COLUMN cancel_requested_at TIMESTAMPTZ;
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('released', 'failed', 'cancelled');

ALTER TABLE queues ADD COLUMN paused_at TIMESTAMPTZ;
ALTER TABLE tickers ADD COLUMN paused_at TIMESTAMPTZ;

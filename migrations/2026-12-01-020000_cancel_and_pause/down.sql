ALTER TABLE tickers DROP COLUMN paused_at;
ALTER TABLE queues DROP COLUMN paused_at;
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE state IN ('released', 'failed');
DELETE FROM tasks WHERE state = 'cancelled';
ALTER TABLE tasks
    DROP COLUMN cancel_requested_at,
    DROP CONSTRAINT tasks_state_check,
    ADD CONSTRAINT tasks_state_check
        CHECK (state IN ('new', 'retained', 'retry', 'released', 'failed'));

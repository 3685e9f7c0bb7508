DROP INDEX tasks_retained;
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'retained';
ALTER TABLE queues
    DROP CONSTRAINT queues_rate_check,
    DROP COLUMN claim_seq,
    DROP COLUMN rate_at,
    DROP COLUMN rate_tokens,
    DROP COLUMN rate_burst,
    DROP COLUMN rate_per_second,
    DROP COLUMN max_running;

-- Flow control: a queue may limit how many of its tasks are retained at once and how fast
-- they are retained. A limited queue's claims count its retained tasks and take turns on
-- `claim_seq` (each claim bumps it; one that read an older value retains nothing and starts
-- over), so the lease index also leads with the queue: counting one queue's retained tasks
-- is a short range of an index that holds only retained tasks (rescue reads the whole of
-- it, which is as small as the number of tasks running).
ALTER TABLE queues
    ADD COLUMN max_running INTEGER CHECK (max_running > 0),
    ADD COLUMN rate_per_second DOUBLE PRECISION CHECK (rate_per_second > 0),
    ADD COLUMN rate_burst INTEGER CHECK (rate_burst > 0),
    -- The token bucket: tokens left at rate_at (NULL: full, never claimed under this rate).
    ADD COLUMN rate_tokens DOUBLE PRECISION,
    ADD COLUMN rate_at TIMESTAMPTZ,
    ADD COLUMN claim_seq BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT queues_rate_check CHECK ((rate_per_second IS NULL) = (rate_burst IS NULL));

DROP INDEX tasks_lease;
CREATE INDEX tasks_retained ON tasks (namespace, queue, lease_expires_at)
    WHERE state = 'retained';

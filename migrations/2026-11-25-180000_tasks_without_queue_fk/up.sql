-- The foreign key from tasks to queues ran one referential check per inserted row, each
-- locking the queue's row (FOR KEY SHARE), so a batch of 1,000 tasks took 1,000 row locks on
-- one row and concurrent enqueuers of one queue contended for it through multixacts. The
-- create statement now locks the queue's row once per statement itself (FOR KEY SHARE, the
-- same lock the check took), and deleting or renaming a queue carries its tasks explicitly,
-- in the same transaction, after that lock: the same guarantees, paid once per statement.
ALTER TABLE tasks DROP CONSTRAINT tasks_namespace_queue_fkey;

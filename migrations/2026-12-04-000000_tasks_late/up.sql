-- The late tasks: waiting tasks that became (or will become) retainable after their creation,
-- a failed attempt's retry and a delayed task, in claim order within a queue. A one-queue claim
-- walks each priority of the queue from a floor past the tasks it took last (its walk then
-- skips the entries those tasks left behind, which no vacuum removes while a transaction holds
-- the horizon); a late task may sit below that floor, so the claim reads it from here first
-- (docs/adr/0002-hot-path-storage.md, "the design for the product";
-- adapters/postgres/src/tasks/floors.rs; `late!()` in tasks/claim.rs must imply this predicate).
CREATE INDEX tasks_late_by_queue ON tasks (namespace, queue, priority DESC, created_at, id)
    WHERE state = 'retry' OR (state = 'new' AND delayed_at IS NOT NULL);

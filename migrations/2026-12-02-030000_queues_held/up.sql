-- The queues whose tasks the plain claim leaves alone: paused or limited (docs/flow-control.md).
-- A namespace may have thousands of queues and usually holds only a few of these, so the
-- claim reads them through this index once per statement instead of every queue of the
-- namespace (or every queue a worker names) by key. `held!()` in
-- adapters/postgres/src/tasks/claim.rs must imply this predicate for the planner to use the
-- index (tests/it/postgres/plans.rs checks that it does).
CREATE INDEX queues_held ON queues (namespace, name)
    WHERE paused_at IS NOT NULL OR max_running IS NOT NULL OR rate_per_second IS NOT NULL;

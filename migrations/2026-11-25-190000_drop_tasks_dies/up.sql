-- tasks_dies (dies_at of unfinished tasks) served only the clean-up of expired tasks, an
-- hourly statement that scans in id order anyway. It cost an index insertion on every
-- create and every claim, and with generic plans the claim chose it for its `dies_at > now`
-- condition whenever statistics made it look selective, then read every waiting task per
-- claim (a drain beside 1,000,000 finished tasks fell to 0.22x of an empty table's).
DROP INDEX tasks_dies;

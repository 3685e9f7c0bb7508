-- Shape e: today's table (rows updated in place, the state is the receipt), but the claim
-- walks fresh tasks from a floor instead of from the head of the claim index, and merges a
-- separate late set (delayed, retried, rescued tasks: empty here, read every claim so its
-- probe is paid for). A lane is one (namespace, queue, priority): a floor bounds the index
-- walk only with the priority fixed. :floor is the client's own hint (a pgbench variable, as
-- it would be a worker process's memory): the id after the last task it took that was
-- created more than :lag ago (run.sh: 100 ms; live.sh: 0 and 100 ms). Passing a task never
-- loses it (its row still says 'new'); whatever is left below a floor is found when floors
-- are forgotten (not measured here).
WITH f AS (SELECT id, priority, created_at FROM e_tasks
            WHERE namespace = 'ns' AND queue = 'q' AND priority = 0 AND state = 'new' AND NOT late
              AND id >= :floor ORDER BY id LIMIT :k FOR UPDATE SKIP LOCKED),
     l AS (SELECT id, priority, created_at FROM e_tasks
            WHERE namespace = 'ns' AND queue = 'q' AND state IN ('new', 'retry') AND late
            ORDER BY priority DESC, created_at, id LIMIT :k),
     c AS (SELECT id FROM (SELECT * FROM f UNION ALL SELECT * FROM l) m
            ORDER BY priority DESC, created_at, id LIMIT :k),
     u AS (UPDATE e_tasks t SET state = 'retained', worker = 'w', lease_expires_at = now() + interval '30 s'
           FROM c WHERE t.id = c.id AND t.state IN ('new', 'retry') RETURNING t.id, t.created_at)
SELECT coalesce(array_agg(id), '{}') AS ids,
       coalesce(max(id) FILTER (WHERE created_at < now() - interval ':lag') + 1, :floor) AS floor FROM u
\gset
UPDATE e_tasks SET state = 'released', finished_at = now(), lease_expires_at = NULL, result = '"ok"'
 WHERE id = ANY(':ids'::bigint[]) AND worker = 'w' AND (state = 'retained') IS TRUE;

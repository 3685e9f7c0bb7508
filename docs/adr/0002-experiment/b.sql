-- Option B: claim :k in place, then move them to history.
WITH c AS (SELECT id FROM b_tasks WHERE namespace = 'ns' AND queue = 'q' AND state IN ('new', 'retry')
           ORDER BY priority DESC, created_at, id LIMIT :k FOR UPDATE SKIP LOCKED),
     u AS (UPDATE b_tasks t SET state = 'retained', worker = 'w', lease_expires_at = now() + interval '30 s'
           FROM c WHERE t.id = c.id RETURNING t.id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM u
\gset
WITH d AS (DELETE FROM b_tasks WHERE id = ANY(':ids'::bigint[]) AND worker = 'w' AND state = 'retained' RETURNING *)
INSERT INTO b_history (id, namespace, queue, priority, created_at, state, worker, finished_at, retries, payload, result)
SELECT id, namespace, queue, priority, created_at, 'released', worker, now(), retries, payload, '"ok"' FROM d;

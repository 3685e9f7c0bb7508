-- Shape f: a's table and indexes unchanged, the floor on today's claim index itself. Within
-- one lane (a queue and priority) `a_retainable_by_queue` is in claim order, (created_at,
-- id), so a row comparison starts the walk past what the client last took; tasks that became
-- retainable below a floor (delayed, retried, rescued) are read from the head of the lane,
-- which under a held horizon walks the dead entries again: this shape measures the floor with
-- no late set (there are no late tasks here). :fc/:fid are the client's floor (pgbench
-- variables, as they would be a worker process's memory).
WITH c AS (SELECT id, created_at FROM a_tasks
            WHERE namespace = 'ns' AND queue = 'q' AND priority = 0 AND state IN ('new', 'retry')
              AND (created_at, id) > (':fc'::timestamptz, :fid::bigint)
            ORDER BY priority DESC, created_at, id LIMIT :k FOR UPDATE SKIP LOCKED),
     u AS (UPDATE a_tasks t SET state = 'retained', worker = 'w', lease_expires_at = now() + interval '30 s'
           FROM c WHERE t.id = c.id RETURNING t.id, t.created_at)
SELECT coalesce(array_agg(id), '{}') AS ids,
       coalesce((SELECT created_at FROM u ORDER BY created_at DESC, id DESC LIMIT 1), ':fc'::timestamptz) AS fc,
       coalesce((SELECT id FROM u ORDER BY created_at DESC, id DESC LIMIT 1), :fid::bigint) AS fid FROM u
\gset
UPDATE a_tasks SET state = 'released', finished_at = now(), lease_expires_at = NULL, result = '"ok"'
 WHERE id = ANY(':ids'::bigint[]) AND worker = 'w' AND (state = 'retained') IS TRUE;

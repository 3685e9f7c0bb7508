-- Today's shape: claim :k in place, then release them in place. The release is pinned to the
-- primary key as pgqueue's own is (`IS TRUE` keeps `a_retained`, whose dead entries pile up
-- under a held horizon, out of its plan).
WITH c AS (SELECT id FROM a_tasks WHERE namespace = 'ns' AND queue = 'q' AND state IN ('new', 'retry')
           ORDER BY priority DESC, created_at, id LIMIT :k FOR UPDATE SKIP LOCKED),
     u AS (UPDATE a_tasks t SET state = 'retained', worker = 'w', lease_expires_at = now() + interval '30 s'
           FROM c WHERE t.id = c.id RETURNING t.id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM u
\gset
UPDATE a_tasks SET state = 'released', finished_at = now(), lease_expires_at = NULL, result = '"ok"'
 WHERE id = ANY(':ids'::bigint[]) AND worker = 'w' AND (state = 'retained') IS TRUE;

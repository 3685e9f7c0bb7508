-- Option C's upper bound: take :k positions of the cursor, lease those ready rows, then
-- end the leases into a narrow history. Ready rows are never updated.
WITH p AS (SELECT nextval('c_pos') AS seq FROM generate_series(1, :k)),
     l AS (INSERT INTO c_leases (id, worker, lease_expires_at)
           SELECT r.seq, 'w', now() + interval '30 s' FROM c_ready r JOIN p USING (seq) RETURNING id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM l
\gset
WITH d AS (DELETE FROM c_leases WHERE id = ANY(':ids'::bigint[]) AND worker = 'w' RETURNING id, worker)
INSERT INTO c_history (id, namespace, queue, state, worker, finished_at, result)
SELECT id, 'ns', 'q', 'released', worker, now(), '"ok"' FROM d;

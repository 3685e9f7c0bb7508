-- Option C with awa's serialisation: the claim holds its lane's head row (FOR UPDATE) until
-- it commits, as a claim must for the cursor to advance only across a committed prefix.
WITH h AS (SELECT lane FROM c_head WHERE lane = 1 FOR UPDATE),
     p AS (SELECT nextval('c_pos') AS seq FROM h, generate_series(1, :k)),
     l AS (INSERT INTO c_leases (id, worker, lease_expires_at)
           SELECT r.seq, 'w', now() + interval '30 s' FROM c_ready r JOIN p USING (seq) RETURNING id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM l
\gset
WITH d AS (DELETE FROM c_leases WHERE id = ANY(':ids'::bigint[]) AND worker = 'w' RETURNING id, worker)
INSERT INTO c_history (id, namespace, queue, state, worker, finished_at, result)
SELECT id, 'ns', 'q', 'released', worker, now(), '"ok"' FROM d;

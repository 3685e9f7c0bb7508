-- One insert of :rows tasks: its xid first, then its positions; one in ten rolls back.
\set rows random(1, 3)
\set abort random(0, 9)
BEGIN;
SELECT pg_current_xact_id();
INSERT INTO e_ready (pos, payload) SELECT nextval('e_pos'), '{}' FROM generate_series(1, :rows);
SELECT pg_sleep(random() * 0.002);
\if :abort = 0
ROLLBACK;
\else
COMMIT;
\endif

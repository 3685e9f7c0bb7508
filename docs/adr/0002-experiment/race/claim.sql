-- One claim of up to 10; one in ten rolls back after moving the cursor.
\set abort random(0, 9)
BEGIN;
SELECT count(*) FROM e_claim(10);
\if :abort = 0
ROLLBACK;
\else
COMMIT;
\endif

-- ADR 0002's claim plane in SQL, one lane, to race its rules on a real server (race.sh):
-- immutable ready rows numbered by a sequence, a cursor that is a sequence too, receipts
-- keyed by position, and the sweep with its fence. The claim passes every position it
-- cannot see at once (the harshest skip policy: the sweep must make up for all of it).
SET client_min_messages = warning;
DROP TABLE IF EXISTS e_ready, e_spent, e_lane, e_sweep;
DROP SEQUENCE IF EXISTS e_pos, e_cursor;
DROP FUNCTION IF EXISTS e_claim(int), e_sweep();
CREATE SEQUENCE e_pos;
CREATE SEQUENCE e_cursor;
SELECT setval('e_cursor', 1);
CREATE TABLE e_ready (pos BIGINT PRIMARY KEY, payload JSONB NOT NULL);
-- Receipts and tombstones: a position is spent once (the primary key).
CREATE TABLE e_spent (pos BIGINT PRIMARY KEY, how TEXT NOT NULL);
-- The lane's claim head: the lock that lets one claim at a time move the cursor. Never
-- rewritten, so no versions pile up on it under a held horizon.
CREATE TABLE e_lane (lane INT PRIMARY KEY);
INSERT INTO e_lane VALUES (1);
-- The sweep's state, apart from the claim head so that a sweep never holds claims up: its
-- frontier, and its fence (the cursor and the next xid when it last stopped at a missing
-- position).
CREATE TABLE e_sweep (lane INT PRIMARY KEY, frontier BIGINT NOT NULL, fence_upto BIGINT, fence_xid XID8);
INSERT INTO e_sweep VALUES (1, 1, NULL, NULL);

-- Claims up to n positions from the cursor in position order, passing what it cannot see.
-- A receipt the sweep wrote meanwhile wins (the key): the claim waits for it, then skips.
CREATE FUNCTION e_claim(n INT) RETURNS SETOF BIGINT LANGUAGE plpgsql AS $$
DECLARE
    cur BIGINT;
    taken INT := 0;
    r RECORD;
BEGIN
    PERFORM 1 FROM e_lane WHERE lane = 1 FOR UPDATE;
    SELECT last_value INTO cur FROM e_cursor;
    FOR r IN SELECT e.pos, s.pos IS NOT NULL AS spent FROM e_ready e
             LEFT JOIN e_spent s USING (pos) WHERE e.pos >= cur ORDER BY e.pos LIMIT n + 1000 LOOP
        IF NOT r.spent THEN
            EXIT WHEN taken = n;
            INSERT INTO e_spent VALUES (r.pos, 'claim') ON CONFLICT DO NOTHING;
            IF FOUND THEN
                taken := taken + 1;
                RETURN NEXT r.pos;
            END IF;
        END IF;
        cur := r.pos + 1;
    END LOOP;
    -- A sequence: the move outlives a rollback of this claim.
    PERFORM setval('e_cursor', cur);
END $$;

-- Claims every visible unspent position between the frontier and the cursor, and moves
-- the frontier over spent positions and over missing ones its fence proves aborted. It
-- does not take the claim head: a claim that took a position first wins by the key (the
-- sweep waits for that claim's transaction, then skips or, if it rolled back, takes it).
CREATE FUNCTION e_sweep() RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    l RECORD;
    xmin XID8;
    cur BIGINT;
    expected BIGINT;
    passing BOOLEAN := true;
    r RECORD;
BEGIN
    SELECT * INTO l FROM e_sweep WHERE lane = 1 FOR UPDATE;
    -- Read before the walk: a position missing from the walk's (later) snapshot whose
    -- owner had ended by this one did abort.
    xmin := pg_snapshot_xmin(pg_current_snapshot());
    SELECT last_value INTO cur FROM e_cursor;
    expected := l.frontier;
    -- The walk ends on the cursor itself (a spent sentinel), so missing positions at the
    -- end are met like those between rows.
    FOR r IN SELECT w.pos, w.spent FROM (
               SELECT e.pos, s.pos IS NOT NULL AS spent FROM e_ready e
               LEFT JOIN e_spent s USING (pos) WHERE e.pos >= l.frontier AND e.pos < cur
               UNION ALL SELECT cur, true) w
             ORDER BY w.pos LOOP
        WHILE passing AND expected < r.pos LOOP
            IF expected < l.fence_upto AND l.fence_xid <= xmin THEN
                expected := expected + 1;
            ELSE
                IF l.fence_upto IS NULL OR expected >= l.fence_upto THEN
                    l.fence_upto := cur;
                    l.fence_xid := pg_snapshot_xmax(pg_current_snapshot());
                END IF;
                passing := false;
            END IF;
        END LOOP;
        IF NOT r.spent THEN
            INSERT INTO e_spent VALUES (r.pos, 'sweep') ON CONFLICT DO NOTHING;
        END IF;
        IF passing THEN
            expected := r.pos + 1;
        END IF;
    END LOOP;
    expected := least(expected, cur);
    -- Only when something moved: a version per sweep would pile up under a held horizon.
    UPDATE e_sweep SET frontier = expected, fence_upto = l.fence_upto, fence_xid = l.fence_xid
     WHERE lane = 1 AND (frontier, fence_upto, fence_xid)
           IS DISTINCT FROM (expected, l.fence_upto, l.fence_xid);
END $$;

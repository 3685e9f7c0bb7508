-- The domain refuses a ttl, lease or ticker interval below 100 ms: a small number is almost
-- always seconds sent as nanoseconds ({"interval": 60} is a ticker firing without end). The
-- CHECKs now say what the domain says (a test holds them equal); rows from before the floor
-- are raised to it first.
UPDATE queues SET ttl = greatest(ttl, 100000000), lease = greatest(lease, 100000000)
    WHERE ttl < 100000000 OR lease < 100000000;
UPDATE tickers SET "interval" = 100000000 WHERE "interval" < 100000000;

ALTER TABLE queues
    DROP CONSTRAINT queues_ttl_check,
    DROP CONSTRAINT queues_lease_check,
    ADD CONSTRAINT queues_ttl_check CHECK (ttl >= 100000000),
    ADD CONSTRAINT queues_lease_check CHECK (lease >= 100000000);
ALTER TABLE tickers
    DROP CONSTRAINT tickers_interval_check,
    ADD CONSTRAINT tickers_interval_check CHECK ("interval" >= 100000000);

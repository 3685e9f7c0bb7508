ALTER TABLE tickers
    DROP CONSTRAINT tickers_interval_check,
    ADD CONSTRAINT tickers_interval_check CHECK ("interval" > 0);
ALTER TABLE queues
    DROP CONSTRAINT queues_ttl_check,
    DROP CONSTRAINT queues_lease_check,
    ADD CONSTRAINT queues_ttl_check CHECK (ttl > 0),
    ADD CONSTRAINT queues_lease_check CHECK (lease > 0);

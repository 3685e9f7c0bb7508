-- Cron tickers. A ticker has either an interval or a cron expression read in a time zone,
-- and every ticker stores its next maturity, computed by the application (a cron expression
-- cannot be evaluated in SQL): a claim compares `next_at` with now and swaps it for the next
-- one, so the maturity survives restarts and two claimers cannot both win.
ALTER TABLE tickers
    ALTER COLUMN "interval" DROP NOT NULL,
    ADD COLUMN cron TEXT,
    ADD COLUMN timezone TEXT,
    ADD COLUMN next_at TIMESTAMPTZ;
-- Interval tickers mature one interval after they last fired, at once if they never did
-- (the rule the claim used to state in SQL).
UPDATE tickers SET next_at = CASE
    WHEN "timestamp" IS NULL THEN now()
    ELSE least("timestamp" + ("interval" / 1000) * interval '1 microsecond',
               '9999-12-31 23:59:59.999999+00'::timestamptz)
END;
ALTER TABLE tickers
    ALTER COLUMN next_at SET NOT NULL,
    ADD CONSTRAINT tickers_schedule_check
        CHECK ((("interval" IS NULL) <> (cron IS NULL)) AND ((cron IS NULL) = (timezone IS NULL)));

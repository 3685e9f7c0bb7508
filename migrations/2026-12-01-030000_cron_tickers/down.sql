DELETE FROM tickers WHERE cron IS NOT NULL;
ALTER TABLE tickers
    DROP CONSTRAINT tickers_schedule_check,
    DROP COLUMN next_at,
    DROP COLUMN timezone,
    DROP COLUMN cron,
    ALTER COLUMN "interval" SET NOT NULL;

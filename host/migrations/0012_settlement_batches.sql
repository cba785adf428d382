-- Each settlement batch that ran, so the daily batch is due by the clock
-- (a restart neither skips nor repeats it).
CREATE TABLE settlement_batches (
    id           INTEGER PRIMARY KEY,
    ran_at       INTEGER NOT NULL,
    cutoff_at    INTEGER NOT NULL,
    settlements  INTEGER NOT NULL,
    skipped      INTEGER NOT NULL
) STRICT;

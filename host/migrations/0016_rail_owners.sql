-- Which plugin file (its stem) owns each rail name in each mode. Payments,
-- refunds, disputes and settlements record their rail by name, and
-- callbacks reach a rail by its file: the first file to register a name
-- for a mode keeps it for as long as anything was recorded under it, so a
-- plugin loaded later under another file name cannot take the name and
-- settle those payments.
CREATE TABLE rail_owners (
    rail          TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    plugin        TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (rail, mode)
) STRICT;

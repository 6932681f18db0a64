-- GroupServer's general settings table and its audit trail. Both are created
-- only where absent, so an existing GroupServer database keeps its tables,
-- indexes and rows as they are.

-- +goose Up
CREATE TABLE IF NOT EXISTS option (
    component_id TEXT NOT NULL,
    option_id    TEXT NOT NULL,
    site_id      TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    value        TEXT,
    UNIQUE (component_id, option_id, site_id, group_id)
);

CREATE TABLE IF NOT EXISTS audit_event (
    id                  TEXT PRIMARY KEY,
    event_date          TIMESTAMP WITH TIME ZONE NOT NULL,
    subsystem           TEXT NOT NULL,
    event_code          TEXT NOT NULL,
    user_id             TEXT DEFAULT NULL,
    instance_user_id    TEXT DEFAULT NULL,
    site_id             TEXT DEFAULT NULL,
    group_id            TEXT DEFAULT NULL,
    instance_datum      TEXT DEFAULT NULL,
    supplementary_datum TEXT DEFAULT NULL
);

-- +goose Down
-- These tables may be GroupServer's own, with its data, so going down never
-- drops them.
SELECT 1;

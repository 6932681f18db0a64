-- PostgreSQL notifies other instances of token changes from triggers made
-- by this version. SQLite has no such channel, so instances on one SQLite
-- file rely on the cache's staleness bound. The version exists here too so
-- that both backends share their version numbers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

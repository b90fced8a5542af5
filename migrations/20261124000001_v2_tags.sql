-- Tags on data entries, for the Seven Bridges-compatible /v2 surface (a file's `tags`).
-- The limits mirror domain::tags, so no writer can store what the API would refuse.
ALTER TABLE data_entries
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(tags) <= 100 AND array_position(tags, NULL) IS NULL);
-- Overlap (&&) lookups for `GET /v2/files?tag=…`.
CREATE INDEX data_entries_tags_idx ON data_entries USING gin (tags);

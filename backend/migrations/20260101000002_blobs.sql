-- Metadata of objects kept in S3-compatible storage; the bytes live under `key`.
CREATE TABLE IF NOT EXISTS blobs (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    filename TEXT,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS blobs_user_id_created_idx ON blobs (user_id, created_at DESC);

-- Named tokens, stored only as SHA-256 digests, several per site, with
-- expiry, revocation and rotation. A token is current while it is neither
-- revoked nor replaced; a replaced token stays valid until its expiry, the
-- end of the rotation's grace period.

-- +goose Up
CREATE TABLE gs_auth_token (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    site_id     TEXT NOT NULL DEFAULT '',
    digest      TEXT NOT NULL,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at  TIMESTAMP WITH TIME ZONE DEFAULT NULL,
    revoked_at  TIMESTAMP WITH TIME ZONE DEFAULT NULL,
    replaced_by TEXT DEFAULT NULL
);

-- At most one current token of each name on each site.
CREATE UNIQUE INDEX gs_auth_token_current_name ON gs_auth_token (site_id, name)
    WHERE revoked_at IS NULL AND replaced_by IS NULL;

-- Last use of each token, the plain-text one of GroupServer's option row
-- included (as token_id 'legacy'). Kept apart from the tokens so that
-- recording a use never contends with rotation or revocation.
CREATE TABLE gs_auth_token_use (
    token_id     TEXT PRIMARY KEY,
    last_used_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- +goose Down
DROP TABLE gs_auth_token_use;
DROP TABLE gs_auth_token;

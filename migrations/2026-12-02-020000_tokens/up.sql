-- API tokens (docs/security.md). Only the SHA-256 of a token's text is stored.
CREATE TABLE tokens (
    id           BIGSERIAL   PRIMARY KEY,
    name         TEXT,
    hash         BYTEA       NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    -- '*' alone means every namespace but the system one.
    namespaces   TEXT[]      NOT NULL CHECK (cardinality(namespaces) > 0),
    scopes       TEXT[]      NOT NULL CHECK (scopes <@ ARRAY['read', 'enqueue', 'consume', 'admin']),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

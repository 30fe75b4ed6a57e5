-- Sign-in for people (issue #10): users, browser sessions, remembered consent, authorization codes,
-- refresh tokens, the authorization-code settings of clients, and API keys. Secrets are stored only as
-- hashes (Argon2id for passwords, SHA-256 for 256-bit random tokens). Flags are INTEGER 0/1.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    patient_mrn   TEXT,
    display_name  TEXT,
    is_active     INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX users_updated ON users (updated_at);

-- Browser sessions of the login and consent pages; username is NULL until someone signs in.
CREATE TABLE user_sessions (
    session_hash TEXT NOT NULL PRIMARY KEY,
    username     TEXT,
    csrf_token   TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   TEXT    NOT NULL
);
CREATE INDEX user_sessions_expiry ON user_sessions (expires_at);

-- Consent a user gave a client, remembered until revoked.
CREATE TABLE user_consents (
    username   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (username, client_id)
);

-- Authorization codes: single use, short-lived, bound to client, redirect URI and PKCE challenge.
CREATE TABLE authorization_codes (
    code_hash      TEXT NOT NULL PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    username       TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        TEXT,
    family_id      TEXT,
    access_jti     TEXT,
    created_at     TEXT    NOT NULL
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- Refresh tokens: rotated on every use; reuse of a used one revokes its family.
CREATE TABLE refresh_tokens (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    family_id   TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    username    TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    access_jti  TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT,
    created_at  TEXT    NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (username, client_id);

-- Authorization-code settings of a client (registered dynamically, from a metadata document, or by the
-- operator). A client without a row here is a machine client (client_credentials only).
CREATE TABLE client_redirects (
    client_id     TEXT NOT NULL PRIMARY KEY,
    redirect_uris TEXT NOT NULL,
    grant_types   TEXT NOT NULL,
    auth_method   TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- API keys of clients: key_id is public (in the key's text), key_hash is SHA-256 of the secret part.
CREATE TABLE api_keys (
    key_id       TEXT NOT NULL PRIMARY KEY,
    key_hash     TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   INTEGER,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_keys_client ON api_keys (client_id);

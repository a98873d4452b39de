-- Bedside pads (issue 8, docs/api/patient.md §5): registered tablets that call the server
-- through SM2-envelope + SM4-GCM messages signed by their device key. Instants are unix ms.

-- One row per pad. The enrolment code is stored as its SM3 only and cleared when used.
CREATE TABLE IF NOT EXISTS pads (
    pad_id          TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    ward            TEXT NOT NULL,
    status          TEXT NOT NULL,          -- pending | active | revoked
    code_hash       TEXT,                   -- SM3 hex of "pad-code:" || code
    code_expires_at BIGINT,
    public_key      BLOB,                   -- SEC1 uncompressed SM2 device key (set at enrolment)
    cert_serial     TEXT UNIQUE,            -- device certificate (pki_certificates.serial)
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    enrolled_at     BIGINT,
    revoked_at      BIGINT,
    last_seen_at    BIGINT
);
CREATE INDEX IF NOT EXISTS pads_code ON pads (code_hash);

-- Nonces of accepted envelopes, kept ten minutes (the time window is five either way).
CREATE TABLE IF NOT EXISTS pad_nonces (
    pad_id      TEXT NOT NULL REFERENCES pads (pad_id),
    nonce       TEXT NOT NULL,              -- hex
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (pad_id, nonce)
);
CREATE INDEX IF NOT EXISTS pad_nonces_expiry ON pad_nonces (expires_at);

-- The channel key: an SM2 private key kept in the crypto device (import_secret), its public key
-- here for enrolment answers. One row, name = 'channel'; the first instance to record it wins.
CREATE TABLE IF NOT EXISTS pad_keys (
    name        TEXT PRIMARY KEY NOT NULL,
    key_id      TEXT NOT NULL,              -- crypto_keys.id
    public_key  BLOB NOT NULL,              -- SEC1 uncompressed
    created_at  BIGINT NOT NULL
);

-- A patient task may be assigned to a pad; verified_by says how the session was obtained
-- (sms | pad: ward staff vouched at the bedside; NULL = sms, before this migration).
ALTER TABLE patient_tasks ADD COLUMN pad_id TEXT;
ALTER TABLE patient_tasks ADD COLUMN verified_by TEXT;
CREATE INDEX IF NOT EXISTS patient_tasks_pad ON patient_tasks (pad_id, created_at);

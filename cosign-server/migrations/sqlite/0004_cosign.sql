-- Co-signing (issue 6): client systems, staff and their phones, signing requests, rounds and
-- signatures. Secrets (app HMAC keys, server shares d2, OPRF keys, ID numbers) live in the
-- crypto device (crypto_keys); these tables hold their key ids. Instants are unix ms.

-- Client systems (HIS, EMR...) that call the API with HMAC-SM3-signed requests.
CREATE TABLE IF NOT EXISTS client_apps (
    app_id          TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    secret_key      TEXT NOT NULL,      -- crypto_keys.id of the HMAC secret
    permissions     TEXT NOT NULL,      -- space-separated
    rate_per_minute BIGINT NOT NULL,
    webhook_url     TEXT,               -- POSTed to when a request completes (optional)
    enabled         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- Nonces seen inside the replay window, per caller (app or device).
CREATE TABLE IF NOT EXISTS request_nonces (
    caller      TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (caller, nonce)
);
CREATE INDEX IF NOT EXISTS request_nonces_expiry ON request_nonces (expires_at);

CREATE TABLE IF NOT EXISTS staff (
    staff_id            TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL,
    department          TEXT NOT NULL,
    role                TEXT NOT NULL,
    phone               TEXT NOT NULL,
    id_number_key       TEXT,            -- crypto_keys.id holding the resident ID number
    licence_no          TEXT,
    status              TEXT NOT NULL,   -- new | active | locked | disabled
    pin_failures        BIGINT NOT NULL,
    activation_hash     TEXT,            -- SM3 of the one-time activation code
    activation_expires  BIGINT,
    activation_failures BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- A staff member's phone. One active device per staff member.
CREATE TABLE IF NOT EXISTS devices (
    device_id        TEXT PRIMARY KEY NOT NULL,
    staff_id         TEXT NOT NULL REFERENCES staff (staff_id),
    name             TEXT NOT NULL,
    public_key       TEXT NOT NULL,      -- device SM2 key, hex SEC1
    status           TEXT NOT NULL,      -- pending | active | revoked
    keygen_session   TEXT NOT NULL,
    share_key        TEXT,               -- crypto_keys.id of d2 (parked until confirmed)
    oprf_key         TEXT,               -- crypto_keys.id of the PIN OPRF key
    joint_public_key TEXT,               -- hex SEC1
    cert_serial      TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_staff ON devices (staff_id, status);

CREATE TABLE IF NOT EXISTS sign_requests (
    request_id       TEXT PRIMARY KEY NOT NULL,
    app_id           TEXT NOT NULL,
    qr_nonce         TEXT NOT NULL,
    watch_token_hash TEXT NOT NULL,
    title            TEXT NOT NULL,
    ordered          BIGINT NOT NULL,
    status           TEXT NOT NULL,      -- pending | completed | expired | cancelled
    patient_id       TEXT,
    visit_id         TEXT,
    doc_type         TEXT,
    department       TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    completed_at     BIGINT
);
CREATE INDEX IF NOT EXISTS sign_requests_status ON sign_requests (status, expires_at);

CREATE TABLE IF NOT EXISTS sign_request_documents (
    request_id  TEXT NOT NULL REFERENCES sign_requests (request_id),
    doc_index   BIGINT NOT NULL,
    name        TEXT NOT NULL,
    digest      TEXT NOT NULL,          -- SM3 hex
    content     BLOB,
    media_type  TEXT,
    PRIMARY KEY (request_id, doc_index)
);

CREATE TABLE IF NOT EXISTS sign_request_signers (
    request_id  TEXT NOT NULL REFERENCES sign_requests (request_id),
    position    BIGINT NOT NULL,
    staff_id    TEXT NOT NULL REFERENCES staff (staff_id),
    signed_at   BIGINT,
    PRIMARY KEY (request_id, position),
    UNIQUE (request_id, staff_id)
);
CREATE INDEX IF NOT EXISTS sign_request_signers_staff ON sign_request_signers (staff_id, signed_at);

-- A co-signing round: the server's first protocol message (no secret) and what it covers,
-- so any instance can answer the next message, also after a restart.
CREATE TABLE IF NOT EXISTS sign_rounds (
    round_id     TEXT PRIMARY KEY NOT NULL,
    staff_id     TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    state        TEXT NOT NULL,          -- started | answered | finished
    request_json TEXT NOT NULL,
    items_json   TEXT NOT NULL,
    -- SM3 of the phone message each step answered and the answer, so a repeated message
    -- (the phone lost the reply and resends) gets the same answer instead of an error.
    commit_hash  TEXT,
    partial_json TEXT,
    result_hash  TEXT,
    outcome_json TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS signatures (
    request_id  TEXT NOT NULL REFERENCES sign_requests (request_id),
    doc_index   BIGINT NOT NULL,
    staff_id    TEXT NOT NULL,
    cms         BLOB NOT NULL,
    cert_serial TEXT NOT NULL,
    round_id    TEXT NOT NULL,
    signed_at   BIGINT NOT NULL,
    PRIMARY KEY (request_id, doc_index, staff_id)
);

-- Webhook callbacks to client systems: written in the transaction that completes a request,
-- sent by a background worker with HMAC-SM3 headers, retried with exponential backoff.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id  TEXT PRIMARY KEY NOT NULL,
    app_id       TEXT NOT NULL,
    url          TEXT NOT NULL,
    body         TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (delivered_at, next_at);

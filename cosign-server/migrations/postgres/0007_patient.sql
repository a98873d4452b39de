-- Patient signing (issue 8): tasks created by terminals, signed by patients (or proxies) in
-- the H5 page. Secrets never sit here in plain: the link token, SMS codes and page sessions
-- are stored as SM3 hashes; ID numbers and the link token (for the QR code) live in the crypto
-- device or are SM4-GCM-encrypted under a device key; stroke evidence is SM4-GCM-encrypted.
-- Instants are unix ms.

CREATE TABLE IF NOT EXISTS patient_tasks (
    task_id             TEXT PRIMARY KEY NOT NULL,
    app_id              TEXT NOT NULL,
    token_hash          TEXT NOT NULL UNIQUE,   -- SM3 hex of the link token
    token_sealed        BYTEA NOT NULL,          -- the token, SM4-GCM under the patient key (QR)
    title               TEXT NOT NULL,
    signer_role         TEXT NOT NULL,          -- patient | proxy
    signer_name         TEXT NOT NULL,
    phone               TEXT NOT NULL,
    id_number_key       TEXT,                   -- crypto_keys.id of the patient's ID number
    patient_id          TEXT,
    visit_id            TEXT,
    doc_type            TEXT,
    department          TEXT,
    identity            TEXT NOT NULL,          -- JSON array
    sign_mode           TEXT NOT NULL,          -- button | long_press | handwriting | copy
    copy_text           TEXT,
    require_read_to_end BIGINT NOT NULL,
    placement           TEXT NOT NULL,          -- JSON as sent
    delivery            TEXT NOT NULL,
    document_id         TEXT NOT NULL,          -- documents.id (the archive)
    base_version        BIGINT NOT NULL,        -- document version the signature goes onto
    page_count          BIGINT NOT NULL,
    status              TEXT NOT NULL,          -- pending | verified | signing | signed | locked | cancelled
    otp_hash            TEXT,
    otp_expires_at      BIGINT,
    otp_sent_at         BIGINT,
    otp_failures        BIGINT NOT NULL,
    session_hash        TEXT,
    verified_at         BIGINT,
    proxy               TEXT,                   -- JSON: relationship, name, reason, masked ID
    proxy_id_key        TEXT,                   -- crypto_keys.id of the proxy's ID number
    submission_id       TEXT,
    lease_until         BIGINT,                 -- signing in progress until (crash recovery)
    evidence_sm3        TEXT,
    cert_serial         TEXT,
    signer_cn           TEXT,
    signed_version      BIGINT,
    signed_sm3          TEXT,
    signed_at           BIGINT,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS patient_tasks_app ON patient_tasks (app_id, created_at);

-- Every SMS code sent (rate limits: one a minute, five an hour per task).
CREATE TABLE IF NOT EXISTS patient_sms (
    task_id  TEXT NOT NULL REFERENCES patient_tasks (task_id),
    sent_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS patient_sms_task ON patient_sms (task_id, sent_at);

-- Rendered page images (cache per task).
CREATE TABLE IF NOT EXISTS patient_pages (
    task_id  TEXT NOT NULL REFERENCES patient_tasks (task_id),
    page     BIGINT NOT NULL,
    png      BYTEA NOT NULL,
    PRIMARY KEY (task_id, page)
);

-- Signing evidence (strokes, mode, proxy data, identity results, user agent, times) as
-- SM4-GCM ciphertext under a device key; its plaintext SM3 is a signed attribute of the CMS.
CREATE TABLE IF NOT EXISTS patient_evidence (
    task_id        TEXT PRIMARY KEY NOT NULL REFERENCES patient_tasks (task_id),
    submission_id  TEXT NOT NULL,
    key_id         TEXT NOT NULL,               -- crypto_keys.id of the SM4 key
    nonce          BYTEA NOT NULL,
    ciphertext     BYTEA NOT NULL,
    plain_sm3      TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- Device keys of the patient service, created on first use (name -> crypto_keys.id).
CREATE TABLE IF NOT EXISTS patient_keys (
    name    TEXT PRIMARY KEY NOT NULL,
    key_id  TEXT NOT NULL
);

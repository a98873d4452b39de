-- Auto-sign (issue 6): a doctor's co-signed authorisation of a scope (document types,
-- departments, time window), the delegated SM2 key generated for it inside the crypto device
-- (key id only here) and its certificate from the staff CA; every auto-signature links to its
-- authorisation. Also the token-bucket burst of client systems. Instants are unix ms.

CREATE TABLE IF NOT EXISTS autosign_authorisations (
    authorisation_id TEXT PRIMARY KEY NOT NULL,
    staff_id         TEXT NOT NULL REFERENCES staff (staff_id),
    device_id        TEXT NOT NULL,       -- the phone that asked for it
    doc_types        TEXT NOT NULL,       -- JSON array, sorted
    departments      TEXT NOT NULL,       -- JSON array, sorted
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    cert_serial      TEXT NOT NULL,       -- reserved at creation, named in the document
    document         TEXT NOT NULL,       -- the canonical JSON the doctor co-signed
    document_sm3     TEXT NOT NULL,       -- SM3 hex of document
    request_id       TEXT NOT NULL,       -- the sign request carrying the document
    state            TEXT NOT NULL,       -- pending | active | revoked
    activation_lease BIGINT,              -- an instance is activating until then
    key_id           TEXT,                -- crypto_keys.id of the delegated key
    uses             BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    activated_at     BIGINT,
    revoked_at       BIGINT,
    revoked_by       TEXT,
    revoke_reason    TEXT
);
CREATE INDEX IF NOT EXISTS autosign_authorisations_staff
    ON autosign_authorisations (staff_id, state, not_after);
CREATE UNIQUE INDEX IF NOT EXISTS autosign_authorisations_request
    ON autosign_authorisations (request_id);

-- Which authorisation made an auto-signature (one row per signatures row made by the server).
CREATE TABLE IF NOT EXISTS autosign_signatures (
    request_id       TEXT NOT NULL,
    doc_index        BIGINT NOT NULL,
    staff_id         TEXT NOT NULL,
    authorisation_id TEXT NOT NULL REFERENCES autosign_authorisations (authorisation_id),
    signed_at        BIGINT NOT NULL,
    PRIMARY KEY (request_id, doc_index, staff_id)
);
CREATE INDEX IF NOT EXISTS autosign_signatures_authorisation
    ON autosign_signatures (authorisation_id);

-- Token bucket of each client system: refill rate_per_minute / 60 per second, at most burst.
ALTER TABLE client_apps ADD COLUMN burst BIGINT;

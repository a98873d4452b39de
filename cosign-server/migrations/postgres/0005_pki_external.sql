-- External certificates (issue 4): trust in accredited external CAs, certification requests
-- for keys this hospital generated in its crypto device, and the certificates external CAs
-- issued for them. Public material only; the keys stay in the device (crypto_keys).
-- Instants are unix milliseconds; fingerprints are lowercase hex SM3 of the certificate DER.

-- CA certificates of external CAs an administrator trusts: self-signed roots (`anchor`) and
-- intermediates that chained to an anchor when they were uploaded (`intermediate`).
CREATE TABLE IF NOT EXISTS pki_external_cas (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,      -- anchor | intermediate
    subject      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    serial       TEXT NOT NULL,      -- lowercase hex
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    added_by     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Certification requests the server made for keys it generated in the crypto device, to hand
-- to an external CA. A certificate is imported only for the key of one of these rows.
CREATE TABLE IF NOT EXISTS pki_external_requests (
    id           TEXT PRIMARY KEY NOT NULL,  -- UUID
    key_id       TEXT NOT NULL,              -- crypto-device key id
    public_key   TEXT NOT NULL,              -- lowercase hex of the SubjectPublicKeyInfo DER
    subject      TEXT NOT NULL,
    csr          BYTEA NOT NULL,              -- DER PKCS#10
    certificate  TEXT,                       -- fingerprint of the latest imported certificate
    requested_by TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pki_external_requests_key ON pki_external_requests (public_key);

-- Certificates external CAs issued for our requests, with the validated issuer chain.
CREATE TABLE IF NOT EXISTS pki_external_certificates (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    request_id   TEXT NOT NULL,              -- pki_external_requests.id
    key_id       TEXT NOT NULL,              -- crypto-device key id (from the request)
    serial       TEXT NOT NULL,              -- lowercase hex
    subject      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    anchor       TEXT NOT NULL,              -- pki_external_cas.fingerprint of the trust anchor
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    chain        TEXT NOT NULL,              -- PEM, issuer first, trust anchor last
    imported_by  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS pki_external_certificates_request ON pki_external_certificates (request_id);

-- The newest CRL of each trusted external CA an administrator uploaded (signature checked
-- against that CA); used with CRLs supplied with an import to check revocation.
CREATE TABLE IF NOT EXISTS pki_external_crls (
    ca           TEXT PRIMARY KEY NOT NULL,  -- pki_external_cas.fingerprint of the signer
    issuer       TEXT NOT NULL,              -- display form
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    added_by     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

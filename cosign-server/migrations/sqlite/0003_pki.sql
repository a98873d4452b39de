-- PKI services (issue 4): the CA hierarchy, issued certificates and their revocation, CRLs,
-- and time-stamp tokens. Keys stay in the crypto device (crypto_keys); these tables hold
-- public material only. Instants are unix milliseconds.

-- Every signing identity the server holds: CAs (root, staff, patient, seal), the TSA and the
-- delegated OCSP responders. `issuer` is the parent authority's name ('' for the root).
CREATE TABLE IF NOT EXISTS pki_authorities (
    name         TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,      -- ca | tsa | ocsp
    issuer       TEXT NOT NULL,
    key_id       TEXT NOT NULL,      -- crypto_keys.id
    cert_serial  TEXT NOT NULL,      -- lowercase hex, pki_certificates.serial
    created_at   BIGINT NOT NULL
);

-- Every certificate issued by one of our CAs (including the CA certificates themselves).
CREATE TABLE IF NOT EXISTS pki_certificates (
    issuer       TEXT NOT NULL,      -- pki_authorities.name of the issuing CA
    serial       TEXT NOT NULL,      -- lowercase hex of the serial number's magnitude
    subject      TEXT NOT NULL,
    profile      TEXT NOT NULL,      -- root_ca | issuing_ca | tsa | ocsp | staff | patient_event | seal
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    der          BLOB NOT NULL,
    revoked_at   BIGINT,             -- NULL while good
    revocation_reason BIGINT,        -- RFC 5280 CRLReason code
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (issuer, serial)
);
CREATE INDEX IF NOT EXISTS pki_certificates_revoked ON pki_certificates (issuer, revoked_at);
-- Serials are 126-bit random numbers, unique across all our CAs (the admin API names a certificate by serial).
CREATE UNIQUE INDEX IF NOT EXISTS pki_certificates_serial ON pki_certificates (serial);

-- The current CRL of each CA. `number` only grows; `der` is replaced in the same transaction.
CREATE TABLE IF NOT EXISTS pki_crls (
    issuer       TEXT PRIMARY KEY NOT NULL,
    number       BIGINT NOT NULL,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    stale        BIGINT NOT NULL,    -- revocations since `der` was built (0: current)
    der          BLOB NOT NULL
);

-- Every time-stamp token the TSA granted (RFC 3161 §4: a TSA keeps a record of its tokens).
CREATE TABLE IF NOT EXISTS pki_tsa_tokens (
    serial       TEXT PRIMARY KEY NOT NULL,  -- lowercase hex
    gen_time     BIGINT NOT NULL,
    imprint_alg  TEXT NOT NULL,
    imprint      TEXT NOT NULL,              -- lowercase hex
    token        BLOB NOT NULL               -- DER ContentInfo
);

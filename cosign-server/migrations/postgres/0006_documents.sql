-- Documents (issue 7): the archive of uploaded and signed documents. File bytes live in the
-- content-addressed store (<data_dir>/documents, by SM3); these tables hold metadata only.
-- Instants are unix milliseconds.

-- One document: its metadata and current state. Searchable by any combination of the
-- equality columns plus a created_at range, newest first (the indexes below end in
-- created_at, id so each filter is an index range scan in the order of the results).
CREATE TABLE IF NOT EXISTS documents (
    id              TEXT PRIMARY KEY NOT NULL,   -- UUID
    patient_id      TEXT NOT NULL,               -- '' when not about a patient
    visit_id        TEXT NOT NULL,               -- 就诊号 / admission number, or ''
    doc_type        TEXT NOT NULL,               -- e.g. 知情同意书, 病历, 检查报告, 处方
    department      TEXT NOT NULL,               -- 科室, or ''
    title           TEXT NOT NULL,
    status          TEXT NOT NULL,               -- uploaded | signed
    current_version BIGINT NOT NULL,             -- document_versions.version of the latest
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_created ON documents (created_at, id);
CREATE INDEX IF NOT EXISTS documents_patient ON documents (patient_id, created_at, id);
CREATE INDEX IF NOT EXISTS documents_visit ON documents (visit_id, created_at, id);
CREATE INDEX IF NOT EXISTS documents_type ON documents (doc_type, created_at, id);
CREATE INDEX IF NOT EXISTS documents_department ON documents (department, created_at, id);
CREATE INDEX IF NOT EXISTS documents_status ON documents (status, created_at, id);
-- The commonest pair of filters (type within a department), answered by one range scan.
CREATE INDEX IF NOT EXISTS documents_type_department ON documents (doc_type, department, created_at, id);

-- Every version of a document, never changed once written: 1 = the upload as received,
-- then the PDF it was converted to (if it was not a PDF), then each signed PDF.
CREATE TABLE IF NOT EXISTS document_versions (
    document_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    kind          TEXT NOT NULL,      -- original | converted | signed
    sm3           TEXT NOT NULL,      -- lowercase hex, the key in the file store
    size          BIGINT NOT NULL,
    media_type    TEXT NOT NULL,      -- application/pdf, image/png, ...
    filename      TEXT NOT NULL,
    original_sm3  TEXT NOT NULL,      -- SM3 of version 1 (recorded in the signatures)
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (document_id, version)
);
CREATE INDEX IF NOT EXISTS document_versions_sm3 ON document_versions (sm3);

-- Who signed which version (a signed version may carry several signatures over time).
CREATE TABLE IF NOT EXISTS document_signers (
    document_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    signer        TEXT NOT NULL,      -- name as shown (certificate CN, or the seal's name)
    cert_serial   TEXT NOT NULL,      -- lowercase hex
    signed_at     BIGINT NOT NULL,
    PRIMARY KEY (document_id, version, cert_serial)
);
CREATE INDEX IF NOT EXISTS document_signers_signer ON document_signers (signer, signed_at);

-- Electronic seals held by the server (GB/T 38540): the key stays in the crypto device.
CREATE TABLE IF NOT EXISTS document_seals (
    name          TEXT PRIMARY KEY NOT NULL,   -- 'org' for the organisation seal
    key_id        TEXT NOT NULL,               -- crypto_keys.id
    cert_serial   TEXT NOT NULL,               -- pki_certificates.serial (issued by the seal CA)
    picture       BYTEA NOT NULL,               -- PNG
    seseal        BYTEA NOT NULL,               -- DER SESeal, empty until made
    created_at    BIGINT NOT NULL
);

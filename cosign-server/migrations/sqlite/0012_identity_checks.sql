-- Identity checks through the hospital's `liveness` service (issues 8 and 10): ID card OCR,
-- face match and liveness, for patient tasks and staff activation. Each check is evidence:
-- who, what, the outcome, the scores and the SHA-256 values of the images the service judged.
-- Images are NOT kept unless [identity] keep_portraits; then the ID portrait sits in
-- identity_portraits, SM4-GCM under a key in the crypto device. Instants are unix ms.

CREATE TABLE IF NOT EXISTS identity_checks (
    check_id        TEXT PRIMARY KEY NOT NULL,
    subject_kind    TEXT NOT NULL,          -- patient_task | staff
    subject_id      TEXT NOT NULL,          -- task id | staff id
    binding         TEXT NOT NULL,          -- task id | SM3 of the activation code in force
    method          TEXT NOT NULL,          -- id_card | face | liveness
    outcome         TEXT NOT NULL,          -- passed | failed
    reason          TEXT,                   -- why it failed (stable word)
    subject_digest  TEXT,                   -- SM3 over binding, name and ID number matched
    ref_check_id    TEXT,                   -- face / liveness: the id_card check of the portrait
    distance        TEXT,                   -- face distance, decimal (sqlx Any binds no floats
    threshold       TEXT,                   -- to PostgreSQL portably), and the threshold used
    scores          TEXT NOT NULL,          -- JSON: OCR confidences, liveness steps, anti-spoof
    image_sha256    TEXT NOT NULL,          -- JSON array, as the service reported them
    portrait_sm3    TEXT,                   -- id_card: SM3 of the printed portrait
    created_at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS identity_checks_binding ON identity_checks (binding, method, outcome);

CREATE TABLE IF NOT EXISTS identity_portraits (
    check_id    TEXT PRIMARY KEY NOT NULL REFERENCES identity_checks (check_id),
    key_id      TEXT NOT NULL,              -- crypto_keys.id of the SM4 key
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

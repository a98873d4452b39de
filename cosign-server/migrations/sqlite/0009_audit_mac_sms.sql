-- Audit authentication and anchoring, and the SMS second factor at activation (issue 6).
-- Instants are unix milliseconds.

-- HMAC-SM3 (hex) over an entry's chain hash under the audit key in the crypto device; NULL for
-- entries written before this migration or before the key was loaded (docs/cosign-service.md).
ALTER TABLE audit_log ADD COLUMN mac TEXT;

-- The device key id of the audit MAC key (one row, name = 'audit-mac'). The first instance to
-- record it wins; the key itself never leaves the crypto device.
CREATE TABLE IF NOT EXISTS audit_keys (
    name       TEXT PRIMARY KEY NOT NULL,
    key_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A time-stamp token from the local TSA over the chain head at `seq`:
-- imprint = SM3("YQAUDIT1\n" || seq || "\n" || hash).
CREATE TABLE IF NOT EXISTS audit_anchors (
    seq        BIGINT PRIMARY KEY NOT NULL,
    hash       TEXT NOT NULL,
    token      BLOB  NOT NULL,
    created_at BIGINT NOT NULL
);

-- SMS one-time code sent to the staff member's phone on record before enrolment.
ALTER TABLE staff ADD COLUMN sms_code_hash TEXT;          -- SM3(staff_id || ':' || code)
ALTER TABLE staff ADD COLUMN sms_expires BIGINT;
ALTER TABLE staff ADD COLUMN sms_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN sms_sent_at BIGINT;
ALTER TABLE staff ADD COLUMN sms_sends BIGINT NOT NULL DEFAULT 0;  -- codes sent for the current activation code

-- crypto-device key records (issue 5). Material is wrapped (SM4-GCM) and every row is
-- authenticated by an HMAC-SM3 tag (mac) computed by the device; see docs/crypto/key-management.md.
CREATE TABLE IF NOT EXISTS crypto_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    label       TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- kek | sm2_sign | sm4 | secret
    state       TEXT NOT NULL,      -- active | suspended | destroyed
    wrapped_by  TEXT NOT NULL,      -- KEK id, 'master', or 'sdf:...' device reference
    material    BYTEA NOT NULL,     -- wrapped key material, empty once destroyed
    public_key  BYTEA NOT NULL,     -- SEC1 public key for SM2 keys, else empty
    created_at  BIGINT NOT NULL,    -- Unix seconds
    updated_at  BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    mac         BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS crypto_keys_wrapped_by ON crypto_keys (wrapped_by);

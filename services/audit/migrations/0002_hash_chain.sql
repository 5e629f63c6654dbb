-- Tamper evidence, part 1: the columns of the SHA-256 chain (one chain per source partition, see
-- services/audit/chain.py), fields auditors search by, chain heads and signed checkpoints.
-- Rows written before this version are chained by the migration step that follows (migrate.py).

-- `json` keeps the exact text that was hashed; jsonb would rewrite numbers and key order.
ALTER TABLE audit_log ALTER COLUMN payload TYPE json USING payload::json;
-- The writer sets recorded_at itself, because the hash covers it.
ALTER TABLE audit_log ALTER COLUMN recorded_at DROP DEFAULT;
ALTER TABLE audit_log
    ADD COLUMN chain     text,
    ADD COLUMN chain_seq bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash      text,
    ADD COLUMN service   text,
    ADD COLUMN priority  text,
    ADD COLUMN actor     text,
    ADD COLUMN teams     text[] NOT NULL DEFAULT '{}';

-- The last row of each chain: read and advanced under a row lock in every write transaction.
CREATE TABLE audit_chain_heads (
    chain     text   PRIMARY KEY,
    chain_seq bigint NOT NULL,
    hash      text   NOT NULL
);

-- Signed checkpoints: body is canonical JSON text, signature Ed25519 over its bytes (base64).
CREATE TABLE audit_checkpoints (
    id         bigserial   PRIMARY KEY,
    created_at timestamptz NOT NULL,
    body       text        NOT NULL,
    signature  text        NOT NULL
);

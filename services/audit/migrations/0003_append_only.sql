-- Tamper evidence, part 2: every row is chained now; history becomes append-only.
ALTER TABLE audit_log
    ALTER COLUMN chain SET NOT NULL,
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, chain_seq);
-- Few indexes: each one costs every insert. Searches narrow by service or time and filter the rest.
-- (The timeline finds causing commands by event_id, so causation_id needs no index of its own.)
DROP INDEX audit_log_incident_key;
DROP INDEX audit_log_causation;
CREATE INDEX audit_log_service ON audit_log (service, occurred_at);
CREATE INDEX audit_log_occurred ON audit_log (occurred_at);

-- Nobody changes history: not the service, not an administrator by mistake. (A superuser can
-- still disable triggers; that is what the hash chain and the signed checkpoints are for.)
CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit history is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- The role the service works as (pool connections SET ROLE to it): it may add history and move
-- its offsets and chain heads, never UPDATE or DELETE history. Created when this user may create
-- roles; otherwise an administrator creates it (see README "Audit").
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'escalation_audit_writer') THEN
        BEGIN
            CREATE ROLE escalation_audit_writer NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role escalation_audit_writer; the service keeps its login role';
            RETURN;
        END;
    END IF;
    GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO escalation_audit_writer;
    GRANT SELECT, INSERT, UPDATE ON consumer_offsets, audit_chain_heads TO escalation_audit_writer;
    GRANT SELECT ON schema_migrations TO escalation_audit_writer;
    GRANT USAGE ON SEQUENCE audit_log_seq_seq, audit_checkpoints_id_seq TO escalation_audit_writer;
    IF NOT pg_has_role(current_user, 'escalation_audit_writer', 'MEMBER') THEN
        EXECUTE format('GRANT escalation_audit_writer TO %I', current_user);
    END IF;
END
$$;

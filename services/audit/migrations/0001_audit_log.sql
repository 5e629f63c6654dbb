-- Audit history: one row per message of any topic, unique on event_id.
CREATE TABLE audit_log (
    seq            bigserial   PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    incident_key   text        NOT NULL,
    incident_id    uuid,
    causation_id   uuid,
    correlation_id uuid,
    topic          text        NOT NULL,
    kafka_partition integer    NOT NULL,
    kafka_offset   bigint      NOT NULL,
    payload        jsonb       NOT NULL
);
CREATE INDEX audit_log_incident ON audit_log (incident_id, occurred_at, seq);
CREATE INDEX audit_log_causation ON audit_log (causation_id);
CREATE INDEX audit_log_incident_key ON audit_log (incident_key, occurred_at);

-- Next offset to read per (consumer, topic, partition), written in the same transaction as rows.
CREATE TABLE consumer_offsets (
    consumer    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);

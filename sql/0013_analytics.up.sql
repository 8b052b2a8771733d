-- Analytics: rollups folded from the event log by one consumer (statemgr/analytics/consumer.py), and the tenant's
-- time zone they are read in. Everything here holds ids, states, times and counts: no personal data, so it survives
-- retention and erasure. The consumer writes as statemgr_relay (the leader's role, which sees every tenant's
-- events); the service reads as statemgr_app under the tenant policy.

ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
GRANT SELECT (time_zone) ON tenants TO statemgr_relay;

-- Where the consumer is in each tenant's log: the rollups hold exactly the events up to this position. It moves in
-- the same statement as the rollups it reflects, so a crash, a restart or a second leader never folds an event
-- twice. next_customer is the next dense number for a customer (the customer bitmaps of analytics_customer_sets).
CREATE TABLE analytics_cursors (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
    tx_id xid8 NOT NULL DEFAULT '0',
    seq bigint NOT NULL DEFAULT 0,
    next_customer integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Sums per bucket: grain 'h' (an hour), 'd' (a UTC day) and 'w' (a UTC week from Monday): the same events in each,
-- so that a long range sums few rows (statemgr/analytics/periods.py), per tenant (agent_id = the nil UUID) and per
-- agent. Durations are kept as a count, a sum in microseconds
-- and a histogram (statemgr/analytics/histogram.py: sparse pairs of fixed log-scale bins, mergeable by addition).
CREATE TABLE analytics_rollups (
    tenant_id uuid NOT NULL,
    grain "char" NOT NULL CHECK (grain IN ('h', 'd', 'w')),
    bucket timestamptz NOT NULL,
    agent_id uuid NOT NULL,
    opened bigint NOT NULL DEFAULT 0,
    closed bigint NOT NULL DEFAULT 0,
    closed_inbound bigint NOT NULL DEFAULT 0,
    closed_outbound bigint NOT NULL DEFAULT 0,
    duration_us bigint NOT NULL DEFAULT 0,
    first_response_n bigint NOT NULL DEFAULT 0,
    first_response_us bigint NOT NULL DEFAULT 0,
    response_n bigint NOT NULL DEFAULT 0,
    response_us bigint NOT NULL DEFAULT 0,
    inbound bigint NOT NULL DEFAULT 0,
    outbound bigint NOT NULL DEFAULT 0,
    transfers_in bigint NOT NULL DEFAULT 0,
    transfers_out bigint NOT NULL DEFAULT 0,
    assigned bigint NOT NULL DEFAULT 0,
    late_replies bigint NOT NULL DEFAULT 0,
    new_customers bigint NOT NULL DEFAULT 0,
    delivered bigint NOT NULL DEFAULT 0,
    read bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    to_delivered_n bigint NOT NULL DEFAULT 0,
    to_delivered_us bigint NOT NULL DEFAULT 0,
    to_read_n bigint NOT NULL DEFAULT 0,
    to_read_us bigint NOT NULL DEFAULT 0,
    duration_h bytea NOT NULL DEFAULT '',
    first_response_h bytea NOT NULL DEFAULT '',
    response_h bytea NOT NULL DEFAULT '',
    to_delivered_h bytea NOT NULL DEFAULT '',
    to_read_h bytea NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, grain, bucket, agent_id)
);

-- Failed outbound messages by provider error code, per bucket of the message's recording (see analytics_rollups).
CREATE TABLE analytics_error_codes (
    tenant_id uuid NOT NULL,
    grain "char" NOT NULL CHECK (grain IN ('h', 'd', 'w')),
    bucket timestamptz NOT NULL,
    error_code text NOT NULL,
    failed bigint NOT NULL,
    PRIMARY KEY (tenant_id, grain, bucket, error_code)
);

-- Which customers wrote (active) and which were created, per bucket: roaring bitmaps of customer numbers, so that
-- distinct customers over any range are exact (a union of the range's bitmaps).
CREATE TABLE analytics_customer_sets (
    tenant_id uuid NOT NULL,
    grain "char" NOT NULL CHECK (grain IN ('h', 'd', 'w')),
    bucket timestamptz NOT NULL,
    active bytea NOT NULL,
    created bytea NOT NULL,
    PRIMARY KEY (tenant_id, grain, bucket)
);

CREATE TABLE analytics_customer_numbers (
    tenant_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    number integer NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- The consumer's view of each open conversation (deleted when it closes): what the next event needs to be folded.
CREATE TABLE analytics_conversations (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    customer_id uuid,
    agent_id uuid,
    state text NOT NULL,
    opened_at timestamptz NOT NULL,
    state_since timestamptz NOT NULL,
    first_inbound_at timestamptz,
    answered boolean NOT NULL DEFAULT false,
    waiting_since timestamptz,
    last_inbound_at timestamptz,
    inbound integer NOT NULL DEFAULT 0,
    outbound integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, conversation_id)
);
CREATE INDEX analytics_conversations_state ON analytics_conversations (tenant_id, state, state_since);

-- The consumer's view of each outbound message: its bucket and what it has counted for in the delivery funnel, so a
-- later status report moves the counts instead of adding to them.
CREATE TABLE analytics_messages (
    tenant_id uuid NOT NULL,
    message_id uuid NOT NULL,
    recorded_at timestamptz NOT NULL,
    agent_id uuid,
    facts jsonb NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);

-- Live view: open conversations by state, and messages per second of the last minutes (pruned by the consumer).
CREATE TABLE analytics_open (
    tenant_id uuid NOT NULL,
    state text NOT NULL,
    conversations bigint NOT NULL,
    PRIMARY KEY (tenant_id, state)
);

CREATE TABLE analytics_recent (
    tenant_id uuid NOT NULL,
    second timestamptz NOT NULL,
    messages bigint NOT NULL,
    PRIMARY KEY (tenant_id, second)
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['analytics_cursors', 'analytics_rollups', 'analytics_error_codes',
                                'analytics_customer_sets', 'analytics_customer_numbers', 'analytics_conversations',
                                'analytics_messages', 'analytics_open', 'analytics_recent']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR SELECT TO statemgr_app '
                       'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)', name);
        EXECUTE format('CREATE POLICY analytics_consumer ON %I TO statemgr_relay USING (true) WITH CHECK (true)',
                       name);
        EXECUTE format('GRANT SELECT ON %I TO statemgr_app', name);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO statemgr_relay', name);
    END LOOP;
END
$$;

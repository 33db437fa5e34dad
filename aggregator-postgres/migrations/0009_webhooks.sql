-- Webhook endpoints: where order events are delivered, and how deliveries have gone.
CREATE TABLE webhook_endpoints (
    id                   uuid PRIMARY KEY,
    customer_id          text,            -- NULL: every customer's events (an admin's)
    url                  text NOT NULL,
    secret               text NOT NULL,
    statuses             text[] NOT NULL, -- empty: every status
    enabled              boolean NOT NULL,
    disabled_reason      text,
    consecutive_failures integer NOT NULL CHECK (consecutive_failures >= 0),
    created_at           timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_by_customer ON webhook_endpoints (customer_id, id);

-- How far the webhook dispatcher has read the order event log.
CREATE TABLE webhook_dispatch (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch    bigint NOT NULL,
    sequence bigint NOT NULL
);

-- Webhook deliveries travel through the outbox like every other message.
ALTER TABLE outbox DROP CONSTRAINT outbox_queue_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_queue_check
    CHECK (queue IN ('order_queue', 'stock_sync_queue', 'webhook_queue'));

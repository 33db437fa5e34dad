-- Cancellations at vendors that no vendor has confirmed yet: one row per vendor key that
-- a change of the order killed (it failed, was cancelled, expired or re-routed; a
-- confirmed order's keys too), written in the change's transaction beside its
-- CancelAtVendor outbox message and deleted once the vendor confirms the cancellation.
-- The sweeper queues a row again when it was last queued long ago, so a cancellation
-- whose message died (dead-lettered after every worker holding it died) comes back.
CREATE TABLE pending_vendor_cancellations (
    vendor_id       text NOT NULL,
    idempotency_key text NOT NULL,
    order_id        uuid NOT NULL,
    -- When the change that killed the key committed (our clock).
    killed_at       timestamptz NOT NULL,
    -- When a CancelAtVendor message for it was last written.
    queued_at       timestamptz NOT NULL,
    PRIMARY KEY (vendor_id, idempotency_key)
);
CREATE INDEX pending_vendor_cancellations_by_queued_at
    ON pending_vendor_cancellations (queued_at);

-- Keys already holding units for a cancellation when this table came become pending
-- now, so the sweeper queues them again if their messages were lost.
INSERT INTO pending_vendor_cancellations (vendor_id, idempotency_key, order_id, killed_at, queued_at)
SELECT DISTINCT ON (vendor_id, idempotency_key) vendor_id, idempotency_key, order_id, now(), now()
  FROM cancelling_units
ON CONFLICT DO NOTHING;

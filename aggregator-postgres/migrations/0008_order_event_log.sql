-- The order event log: every status change of every order, written by the statement that
-- writes the order (so in its transaction, whichever code path made the change), read
-- by the event stream and webhook deliveries in (tx, sequence) order. A reader takes
-- only events of transactions older than every transaction still running, so an event
-- that commits late can never land behind a position a reader already passed.
CREATE SEQUENCE order_events_sequence;
CREATE TABLE order_events (
    tx          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    sequence    bigint NOT NULL DEFAULT nextval('order_events_sequence'),
    order_id    uuid NOT NULL,
    customer_id text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL,
    version     bigint NOT NULL,
    PRIMARY KEY (tx, sequence)
);
CREATE INDEX order_events_by_customer ON order_events (customer_id, tx, sequence);

-- The newest pruned position: a reader positioned before it has missed events.
CREATE TABLE order_events_pruned (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    tx       xid8 NOT NULL,
    sequence bigint NOT NULL
);

CREATE FUNCTION log_order_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO order_events (order_id, customer_id, from_status, to_status, reason, at, version)
        SELECT n.id, n.customer_id, e->>'from', e->>'to', e->>'reason', (e->>'at')::timestamptz,
               (e->>'version')::bigint
          FROM new_orders n, jsonb_array_elements(n.events) e
         ORDER BY n.id, (e->>'version')::bigint;
    ELSE
        INSERT INTO order_events (order_id, customer_id, from_status, to_status, reason, at, version)
        SELECT n.id, n.customer_id, e->>'from', e->>'to', e->>'reason', (e->>'at')::timestamptz,
               (e->>'version')::bigint
          FROM new_orders n
          JOIN old_orders o ON o.id = n.id,
               jsonb_array_elements(n.events) e
         WHERE (e->>'version')::bigint > o.version
         ORDER BY n.id, (e->>'version')::bigint;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_log_new_events AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION log_order_events();
CREATE TRIGGER orders_log_changed_events AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION log_order_events();

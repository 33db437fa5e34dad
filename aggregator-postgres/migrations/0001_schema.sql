-- Order Aggregator schema. The arithmetic `sellable = reported - reserved -
-- confirmed_not_yet_reported` is enforced here as well as in the code: no counter can go
-- below zero, and every reference is a foreign key.

CREATE TABLE vendors (
    id                   text PRIMARY KEY,
    name                 text NOT NULL,
    base_url             text NOT NULL,
    priority             integer NOT NULL CHECK (priority BETWEEN 0 AND 65535),
    health               text NOT NULL DEFAULT 'healthy'
                         CHECK (health IN ('healthy', 'degraded', 'down')),
    last_good_sync       timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_error           text
);

CREATE TABLE vendor_stock (
    vendor_id                  text NOT NULL REFERENCES vendors (id),
    sku                        text NOT NULL,
    product_id                 text NOT NULL,
    reported                   bigint NOT NULL CHECK (reported >= 0),
    reserved                   bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    confirmed_not_yet_reported bigint NOT NULL DEFAULT 0 CHECK (confirmed_not_yet_reported >= 0),
    as_of                      timestamptz NOT NULL,
    price_minor                bigint NOT NULL CHECK (price_minor >= 0),
    currency                   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    version                    bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (vendor_id, sku)
);
CREATE INDEX vendor_stock_by_sku ON vendor_stock (sku);
CREATE INDEX vendor_stock_by_product ON vendor_stock (product_id);

-- Units a vendor confirmed for our orders that its reports do not include yet; their sum
-- per (vendor, sku) is vendor_stock.confirmed_not_yet_reported.
CREATE TABLE pending_confirmations (
    vendor_id           text NOT NULL,
    sku                 text NOT NULL,
    order_id            uuid NOT NULL,
    quantity            bigint NOT NULL CHECK (quantity > 0),
    vendor_confirmed_at timestamptz NOT NULL,
    PRIMARY KEY (vendor_id, sku, order_id),
    FOREIGN KEY (vendor_id, sku) REFERENCES vendor_stock (vendor_id, sku)
);

CREATE TABLE orders (
    id                uuid PRIMARY KEY,
    customer_id       text NOT NULL,
    status            text NOT NULL
                      CHECK (status IN ('pending', 'reserved', 'confirmed', 'failed', 'cancelled', 'expired')),
    version           bigint NOT NULL CHECK (version >= 1),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    reserved_until    timestamptz NOT NULL,
    failure_reason    text,
    from_hold         uuid,
    details           jsonb NOT NULL,
    lines             jsonb NOT NULL,
    vendor_placements jsonb NOT NULL,
    events            jsonb NOT NULL
);
-- Order lists: by customer and/or status, newest first (ids are UUID v7, time-ordered).
CREATE INDEX orders_by_customer ON orders (customer_id, id DESC);
CREATE INDEX orders_by_status ON orders (status, id DESC);
-- The sweeper: orders still holding stock, by deadline.
CREATE INDEX orders_due ON orders (reserved_until) WHERE status IN ('pending', 'reserved');

CREATE TABLE holds (
    id          uuid PRIMARY KEY,
    customer_id text NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'released', 'converted', 'expired')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    order_id    uuid REFERENCES orders (id),
    lines       jsonb NOT NULL
);
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'active';

-- Units held by an order or hold; their sum per (vendor, sku) is vendor_stock.reserved.
CREATE TABLE reservations (
    owner_kind text NOT NULL CHECK (owner_kind IN ('order', 'hold')),
    owner_id   uuid NOT NULL,
    vendor_id  text NOT NULL,
    sku        text NOT NULL,
    quantity   bigint NOT NULL CHECK (quantity > 0),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (owner_kind, owner_id, vendor_id, sku),
    FOREIGN KEY (vendor_id, sku) REFERENCES vendor_stock (vendor_id, sku)
);
CREATE INDEX reservations_by_stock ON reservations (vendor_id, sku);

CREATE TABLE idempotency_keys (
    customer_id text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    order_id    uuid NOT NULL REFERENCES orders (id),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, key)
);

-- Messages written with the change that caused them; deleted once published.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    queue        text NOT NULL CHECK (queue IN ('order_queue', 'stock_sync_queue')),
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    leased_until timestamptz
);
CREATE INDEX outbox_claimable ON outbox (leased_until NULLS FIRST, id);

CREATE TABLE processed_messages (
    consumer     text NOT NULL,
    message_id   uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

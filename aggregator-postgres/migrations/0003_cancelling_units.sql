-- Units a vendor may hold for a key of ours that a change of the order killed (it
-- failed, was cancelled, expired or re-routed while a worker may have placed it), until
-- the vendor confirms the cancellation. Their sum per (vendor, sku) is part of
-- vendor_stock.confirmed_not_yet_reported, beside pending_confirmations.
CREATE TABLE cancelling_units (
    vendor_id       text NOT NULL,
    sku             text NOT NULL,
    idempotency_key text NOT NULL,
    order_id        uuid NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (vendor_id, idempotency_key, sku),
    FOREIGN KEY (vendor_id, sku) REFERENCES vendor_stock (vendor_id, sku)
);
CREATE INDEX cancelling_units_by_stock ON cancelling_units (vendor_id, sku);

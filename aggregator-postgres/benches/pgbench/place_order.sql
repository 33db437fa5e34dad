-- The statements PostgresStockStore::place_order runs for a one-line order, for pgbench.
-- Variables: :sku (set with -D sku=... for the hot case) or, when :spread is 1, a
-- random SKU out of 10,000. The order id is built from a random 48-bit number.
\set id random(1, 281474976710655)
\set n random(0, 9999)
BEGIN;
UPDATE vendor_stock s
   SET reserved = s.reserved + d.quantity, version = s.version + 1
  FROM UNNEST(ARRAY['BenchVendor']::text[],
              ARRAY[CASE WHEN :spread = 1 THEN 'SPREAD-' || lpad(:n::text, 5, '0') ELSE :sku END]::text[],
              ARRAY[CASE WHEN :spread = 1 THEN 'SPREAD-P-' || lpad(:n::text, 5, '0') ELSE 'HOT-P' END]::text[],
              ARRAY[1]::int8[]) AS d(vendor_id, sku, product_id, quantity),
       vendors v
 WHERE s.vendor_id = d.vendor_id AND s.sku = d.sku AND s.product_id = d.product_id
   AND v.id = s.vendor_id AND v.last_good_sync >= now() - interval '5 minutes'
   AND s.reported - s.reserved - s.confirmed_not_yet_reported >= d.quantity
RETURNING s.vendor_id, s.sku, s.price_minor, s.currency;
INSERT INTO orders (id, customer_id, status, version, created_at, updated_at, reserved_until,
                    failure_reason, from_hold, details, lines, vendor_placements, events)
VALUES (('00000000-0000-7000-8000-' || lpad(to_hex(:id::int8), 12, '0'))::uuid, 'bench-customer', 'reserved', 1,
        now(), now(), now() + interval '15 minutes', NULL, NULL,
        '{"customer": "bench-customer","email": null,"shippingAddress": null,"paymentMethod": null,"notes": null}',
        '[{"item": "HOT","product": "HOT-P","quantity": 1,"allocations": [{"vendor": "BenchVendor","sku": "HOT","quantity": 1,"unitPrice": {"minorUnits": 1000,"currency": "USD"}}]}]',
        '[]',
        '[{"from": null,"to": "reserved","reason": "placed: stock reserved","at": "20261124T200000Z","version": 1}]');
INSERT INTO reservations (owner_kind, owner_id, vendor_id, sku, quantity, expires_at)
SELECT 'order', ('00000000-0000-7000-8000-' || lpad(to_hex(:id::int8), 12, '0'))::uuid, r.vendor_id, r.sku, r.quantity,
       now() + interval '15 minutes'
  FROM UNNEST(ARRAY['BenchVendor']::text[],
              ARRAY[CASE WHEN :spread = 1 THEN 'SPREAD-' || lpad(:n::text, 5, '0') ELSE :sku END]::text[],
              ARRAY[1]::int8[]) AS r(vendor_id, sku, quantity);
INSERT INTO outbox (id, queue, body, created_at)
SELECT * FROM UNNEST(ARRAY[('00000000-0000-7000-8000-' || lpad(to_hex(:id::int8), 12, '0'))::uuid],
                     ARRAY['order_queue']::text[],
                     ARRAY['{"type": "processOrder","order": "00000000-0000-7000-8000-000000000000"}'::bytea],
                     ARRAY[now()]::timestamptz[]);
COMMIT;

-- A batch of :batch one-unit orders in one transaction, the way the store's group commit
-- writes them: lock the touched rows in (vendor, SKU) order, one UPDATE per touched row,
-- set-based INSERTs of the orders and their reservations, one outbox row for the batch
-- (its orders to process as one message), one commit. The event's time has no colons:
-- pgbench reads `:name` as a variable.
-- Variables: :sku (the hot SKU), :spread (1: :batch SKUs out of 10,000), :batch.
\set id random(1, 281474976710)
\set base random(0, 9999)
BEGIN;
SELECT 1 FROM vendor_stock s
 WHERE s.vendor_id = 'BenchVendor'
   AND s.sku IN (SELECT CASE WHEN :spread = 1 THEN 'SPREAD-' || lpad(((:base + g * 97) % 10000)::text, 5, '0') ELSE :sku END
                   FROM generate_series(1, :batch) g)
 ORDER BY s.vendor_id, s.sku
   FOR UPDATE OF s;
UPDATE vendor_stock s
   SET reserved = s.reserved + d.quantity, version = s.version + 1
  FROM (SELECT p.sku, count(*)::int8 AS quantity
          FROM (SELECT CASE WHEN :spread = 1 THEN 'SPREAD-' || lpad(((:base + g * 97) % 10000)::text, 5, '0') ELSE :sku END AS sku
                  FROM generate_series(1, :batch) g) p
         GROUP BY p.sku) d
 WHERE s.vendor_id = 'BenchVendor' AND s.sku = d.sku
   AND s.reported - s.reserved - s.confirmed_not_yet_reported >= d.quantity;
WITH picked AS (
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(:id::int8 * 1000 + g), 12, '0'))::uuid AS id,
              CASE WHEN :spread = 1 THEN 'SPREAD-' || lpad(((:base + g * 97) % 10000)::text, 5, '0') ELSE :sku END AS sku
         FROM generate_series(1, :batch) g),
     placed AS (
       INSERT INTO orders (id, customer_id, status, version, created_at, updated_at, reserved_until,
                           failure_reason, from_hold, details, lines, vendor_placements, events)
       SELECT p.id, 'bench-customer', 'reserved', 1, now(), now(), now() + interval '15 minutes', NULL, NULL,
              '{"customer": "bench-customer","email": null,"shippingAddress": null,"paymentMethod": null,"notes": null}',
              '[{"item": "HOT","product": "HOT-P","quantity": 1,"allocations": [{"vendor": "BenchVendor","sku": "HOT","quantity": 1,"unitPrice": {"minorUnits": 1000,"currency": "USD"}}]}]',
              '[]',
              '[{"from": null,"to": "reserved","reason": "placed: stock reserved","at": "20261124T200000Z","version": 1}]'
         FROM picked p),
     held AS (
       INSERT INTO reservations (owner_kind, owner_id, vendor_id, sku, quantity, expires_at)
       SELECT 'order', p.id, 'BenchVendor', p.sku, 1, now() + interval '15 minutes' FROM picked p),
     queued AS (
       INSERT INTO outbox (id, queue, body, created_at)
       SELECT (array_agg(p.id))[1], 'order_queue',
              convert_to('{"type": "processOrders","orders": [' || string_agg('"' || p.id::text || '"', ',') || ']}', 'UTF8'),
              now()
         FROM picked p)
SELECT 1;
COMMIT;

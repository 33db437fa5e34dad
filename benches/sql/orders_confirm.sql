-- Used by scripts/orders-hot-update-experiment.sh (see BENCHMARKS.md, "Could the
-- confirmation's order update be heap-only?"). One transaction places 64 orders the way a
-- placement batch writes them; a second confirms the 64 placed eight batches earlier the
-- way the worker's confirmation batch rewrites them (status, version, placements and one
-- more event). The event's time has no colons: pgbench reads `:name` as a variable.
SELECT nextval('experiment_batches') AS batch \gset
BEGIN;
INSERT INTO orders (id, customer_id, status, version, created_at, updated_at, reserved_until,
                    failure_reason, from_hold, details, lines, vendor_placements, events)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(:batch * 64 + g), 12, '0'))::uuid,
       'bench-customer-' || (g % 50), 'reserved', 1, now(), now(), now() + interval '15 minutes', NULL, NULL,
       '{"customer": "bench-customer","email": null,"shippingAddress": null,"paymentMethod": null,"notes": null}',
       '[{"item": "ITEM-000001","product": "ITEM-000001","quantity": 1,"allocations": [{"vendor": "VendorA","sku": "ITEM-a-000001","quantity": 1,"unitPrice": {"minorUnits": 1999,"currency": "USD"}}]}]',
       '[]',
       '[{"from": null,"to": "reserved","reason": "placed: stock reserved","at": "20261124T200000Z","version": 1}]'
  FROM generate_series(0, 63) g;
COMMIT;
BEGIN;
UPDATE orders
   SET status = 'confirmed', version = 2, updated_at = now(),
       vendor_placements = '[{"vendor": "VendorA","vendorOrderId": "VA-0000000001","placedAt": "20261124T200001Z"}]',
       events = events || '[{"from": "reserved","to": "confirmed","reason": "confirmed by every vendor","at": "20261124T200001Z","version": 2}]'::jsonb
 WHERE id IN (SELECT ('00000000-0000-7000-8000-' || lpad(to_hex((:batch - 8) * 64 + g), 12, '0'))::uuid
                FROM generate_series(0, 63) g);
COMMIT;

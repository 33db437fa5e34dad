-- Used by scripts/sync-merge-experiment.sh (see BENCHMARKS.md, "a fourth look").
\timing on
CREATE TEMP TABLE chunk AS SELECT 'ITEM-c-'||lpad(i::text,6,'0') sku, 'ITEM-'||lpad(i::text,6,'0') product_id, (i%50)::int8 quantity, now() as_of, 1999::int8 price_minor, 'USD'::text currency FROM generate_series(:lo, :hi) i;
CREATE TEMP TABLE arr AS SELECT array_agg(sku ORDER BY sku) skus, array_agg(product_id ORDER BY sku) products, array_agg(quantity ORDER BY sku) q, array_agg(as_of ORDER BY sku) a, array_agg(price_minor ORDER BY sku) p, array_agg(currency ORDER BY sku) c FROM chunk;
SELECT skus::text skus, products::text products, q::text q, a::text a, p::text p, c::text c FROM arr \gset
PREPARE ins(text, text[], text[], int8[], timestamptz[], int8[], text[]) AS
WITH written AS (
 INSERT INTO vendor_stock (vendor_id, sku, product_id, reported, as_of, price_minor, currency)
 SELECT $1, r.sku, r.product_id, r.quantity, r.as_of, r.price_minor, r.currency
 FROM UNNEST($2, $3, $4, $5, $6, $7) AS r(sku, product_id, quantity, as_of, price_minor, currency)
 ORDER BY r.sku
 ON CONFLICT (vendor_id, sku) DO UPDATE SET product_id = EXCLUDED.product_id, reported = EXCLUDED.reported, as_of = EXCLUDED.as_of, price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency, version = vendor_stock.version + 1
 WHERE vendor_stock.as_of <= EXCLUDED.as_of
 RETURNING sku, as_of, confirmed_not_yet_reported)
SELECT count(*) FROM written;
PREPARE upd(text, text[], text[], int8[], timestamptz[], int8[], text[]) AS
WITH r AS (SELECT * FROM UNNEST($2, $3, $4, $5, $6, $7) AS r(sku, product_id, quantity, as_of, price_minor, currency)),
written AS (
 UPDATE vendor_stock s SET product_id = r.product_id, reported = r.quantity, as_of = r.as_of, price_minor = r.price_minor, currency = r.currency, version = s.version + 1
 FROM r WHERE s.vendor_id = $1 AND s.sku = r.sku AND s.sku >= $2[1] AND s.sku <= $2[array_length($2, 1)] AND s.as_of <= r.as_of
 RETURNING s.sku, s.as_of, s.confirmed_not_yet_reported)
SELECT count(*) FROM written;
BEGIN; SET LOCAL synchronous_commit = off;
SELECT 'ins' AS x;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE ins('VendorC', :'skus', :'products', :'q', :'a', :'p', :'c');
COMMIT;
BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_nestloop = off;
SELECT 'upd' AS x;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE upd('VendorC', :'skus', :'products', :'q', :'a', :'p', :'c');
COMMIT;
BEGIN; SET LOCAL synchronous_commit = off;
SELECT 'ins' AS x;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE ins('VendorC', :'skus', :'products', :'q', :'a', :'p', :'c');
COMMIT;
BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_nestloop = off;
SELECT 'upd' AS x;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE upd('VendorC', :'skus', :'products', :'q', :'a', :'p', :'c');
COMMIT;

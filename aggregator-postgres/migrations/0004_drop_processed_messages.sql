-- Consumers are idempotent by the state they change (every order change is a
-- compare-and-set on its version, vendor calls replay under per-version keys), so the
-- per-consumer record of processed messages was never read. Drop it.
DROP TABLE IF EXISTS processed_messages;

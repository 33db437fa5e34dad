-- Leasing an outbox message changes only `leased_until`. With an index on that column
-- every lease added an entry to both of the outbox's indexes (and left two dead ones
-- per message once it was sent); claims read the outbox in id order through its
-- primary key and never used it. Without it, and with room left on each page, a lease
-- stays on the message's page as a heap-only tuple.
DROP INDEX IF EXISTS outbox_claimable;
ALTER TABLE outbox SET (fillfactor = 50);

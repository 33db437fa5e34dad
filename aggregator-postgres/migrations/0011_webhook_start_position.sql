-- Where in the order event log an endpoint's deliveries start: it wants every event at
-- or after this position. Taken from the registering transaction's snapshot (the oldest
-- transaction still running then), so no event committed after the registration is ever
-- before it, whichever host's clock stamped what. NULL for endpoints registered before
-- this column came: they go by their registration time, as before.
ALTER TABLE webhook_endpoints
    ADD COLUMN starts_at_epoch bigint,
    ADD COLUMN starts_at_sequence bigint;

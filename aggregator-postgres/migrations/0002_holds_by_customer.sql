-- A customer's active holds, counted when the customer places another one (the
-- per-customer hold limits).
CREATE INDEX holds_active_by_customer ON holds (customer_id) WHERE status = 'active';

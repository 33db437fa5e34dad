-- Leave half of each vendor_stock page free, so the updates every placement, confirmation
-- and sync makes to a stock row (none of them changes an indexed column) can stay on
-- the row's page as heap-only tuples instead of adding an entry to each of its three
-- indexes. Applies to pages written from now on; `VACUUM FULL vendor_stock` repacks an
-- existing table.
ALTER TABLE vendor_stock SET (fillfactor = 50);

-- Every order gets a number for people (`ORD-001042`), given once by the database when
-- the order is first written. Orders written before this migration are numbered now, in
-- the order the table hands them over. No index: orders are found by id; the sequence
-- alone keeps numbers unique.
ALTER TABLE orders ADD COLUMN number BIGINT GENERATED ALWAYS AS IDENTITY;

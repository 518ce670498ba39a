-- C-1 orders hold what an order is: its id, customer, day and amount. The instant a row was
-- written is dropped (a third of each row's bytes; who imported or posted orders and when is
-- in the audit log), and so is the index by day alone: the readers that asked "orders after
-- day D" start from the customers whose last order is after D and read their orders through
-- the (customer, day) index. Every byte of an order is written twice (log, then database),
-- and a bulk import built the day index from ten million sorted keys.
-- Keep in step with the other backend's 0018_orders_lean.sql (the parity test compares them).

DROP INDEX orders_day;
ALTER TABLE orders DROP COLUMN created_at;

-- C-3 lifetime value counts transactions as purchase days (several orders on one day are
-- one transaction) and leaves the first day's amount out of repeat spend. Each customer's
-- number of distinct order days and the amount of its first day are kept beside the RFM
-- aggregates, so fitting as of the latest day reads one row per customer.
-- Keep in step with the other backend's 0013_purchase_days.sql (the parity test compares them).

ALTER TABLE customers ADD COLUMN purchase_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN first_day_fen INTEGER NOT NULL DEFAULT 0;

UPDATE customers SET
    purchase_days = (SELECT count(DISTINCT o.order_day) FROM orders o WHERE o.customer_id = customers.id),
    first_day_fen = coalesce((SELECT sum(o.amount_fen) FROM orders o
                              WHERE o.customer_id = customers.id AND o.order_day = customers.first_order_day), 0);

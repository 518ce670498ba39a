-- C-3 historical lifetime value per acquisition channel: the channel named by a customer's
-- first order that names one (or `referral` for a referred customer without one).
-- Keep in step with the other backend's 0016_customer_channel.sql (the parity test compares them).

ALTER TABLE customers ADD COLUMN channel TEXT;

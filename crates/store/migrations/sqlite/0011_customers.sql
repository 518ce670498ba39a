-- Customers and orders (SPEC C-1) with each customer's RFM aggregates (C-2) kept as orders
-- arrive, so scoring never rescans the orders. Days are counted from 1970-01-01 (an
-- integer compares and subtracts without parsing); money in fen.
-- Keep in step with the other backend's 0011_customers.sql (the parity test compares them).

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT,
    first_order_day INTEGER,
    last_order_day INTEGER,
    order_count INTEGER NOT NULL DEFAULT 0,
    monetary_fen INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    order_day INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, order_day);
CREATE INDEX orders_day ON orders (order_day);

-- Acme Online Store: the support line's data. Run once, when the database is first used
-- (DATA_DIR/acme-support/acme.db); idempotent, so running it again changes nothing.

CREATE TABLE IF NOT EXISTS orders (
    id              TEXT PRIMARY KEY,
    customer        TEXT NOT NULL,
    phone           TEXT NOT NULL,          -- E.164; only a call from this number sees the order
    status          TEXT NOT NULL
                    CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled')),
    placed_on       TEXT NOT NULL,          -- ISO date
    eta             TEXT,                   -- ISO date; NULL once delivered or cancelled
    carrier         TEXT,
    tracking_number TEXT
);

CREATE TABLE IF NOT EXISTS order_items (
    order_id TEXT NOT NULL REFERENCES orders (id),
    line     INTEGER NOT NULL,
    sku      TEXT NOT NULL,
    name     TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line)
);

CREATE TABLE IF NOT EXISTS tickets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    number     TEXT UNIQUE,                 -- what the caller is told, e.g. T-1001
    summary    TEXT NOT NULL,
    order_id   TEXT REFERENCES orders (id),
    call_sid   TEXT,
    caller     TEXT,
    status     TEXT NOT NULL DEFAULT 'open',
    created_at TEXT NOT NULL                -- ISO 8601 UTC
);

-- A database seeded before orders had a phone (schema 1) gets the numbers; nothing else changes.
INSERT INTO orders (id, customer, phone, status, placed_on, eta, carrier, tracking_number)
VALUES
    ('A1001', 'Jordan Lee',   '+15551230000', 'shipped',    '2026-11-20', '2026-11-28', 'UPS', '1Z999AA10123456784'),
    ('A1002', 'Sam Rivera',   '+15551230001', 'processing', '2026-11-24', '2026-12-03', NULL,  NULL),
    ('A1003', 'Priya Nair',   '+15551230002', 'delivered',  '2026-11-02', NULL,         'USPS', '9400111899223100012345'),
    ('A1004', 'Chris Morgan', '+15551230003', 'cancelled',  '2026-11-15', NULL,         NULL,  NULL)
ON CONFLICT (id) DO UPDATE SET phone = excluded.phone WHERE orders.phone IS NULL;

INSERT OR IGNORE INTO order_items (order_id, line, sku, name, quantity)
VALUES
    ('A1001', 1, 'KB-200', 'Wireless keyboard', 1),
    ('A1001', 2, 'MS-310', 'Ergonomic mouse', 1),
    ('A1002', 1, 'HD-700', 'Noise-cancelling headphones', 1),
    ('A1003', 1, 'CB-010', 'USB-C cable, 2 m', 3),
    ('A1004', 1, 'LT-450', 'Desk lamp', 1);

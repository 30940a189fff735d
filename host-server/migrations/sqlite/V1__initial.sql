CREATE TABLE products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE admin_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    product TEXT NOT NULL,
    features TEXT NOT NULL,
    counters TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX orders_client ON orders(client_id);
CREATE TABLE licenses (
    key TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    license_type TEXT NOT NULL,
    edition TEXT NOT NULL,
    version TEXT NOT NULL,
    rental_ends_at INTEGER,
    seats INTEGER,
    features TEXT NOT NULL,
    counters TEXT NOT NULL,
    status TEXT NOT NULL,
    dongle TEXT,
    client_id TEXT REFERENCES clients(id),
    order_id TEXT REFERENCES orders(id),
    limited TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX licenses_client ON licenses(client_id);
CREATE INDEX licenses_order ON licenses(order_id);
CREATE TABLE activations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    license_key TEXT NOT NULL REFERENCES licenses(key),
    binding TEXT NOT NULL,
    activated_at INTEGER NOT NULL
);
CREATE INDEX activations_license ON activations(license_key);
CREATE TABLE leases (
    license_key TEXT NOT NULL REFERENCES licenses(key),
    session TEXT NOT NULL,
    binding TEXT NOT NULL,
    leased_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    borrowed_until INTEGER,
    PRIMARY KEY (license_key, session)
);
CREATE TABLE transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    license_key TEXT NOT NULL REFERENCES licenses(key),
    at INTEGER NOT NULL
);
CREATE INDEX transfers_license ON transfers(license_key);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product TEXT NOT NULL,
    binding TEXT NOT NULL,
    edition TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL
);
CREATE TABLE trial_components (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX trial_components_lookup ON trial_components(product, name, value);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    license_key TEXT,
    verdict TEXT NOT NULL,
    code TEXT NOT NULL,
    rule TEXT NOT NULL,
    message TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_license ON audit(license_key, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

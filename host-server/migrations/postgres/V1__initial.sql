CREATE TABLE products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE admin_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    product TEXT NOT NULL,
    features TEXT NOT NULL,
    counters TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX orders_client ON orders(client_id);
CREATE TABLE licenses (
    key TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    license_type TEXT NOT NULL,
    edition TEXT NOT NULL,
    version TEXT NOT NULL,
    rental_ends_at BIGINT,
    seats BIGINT,
    features TEXT NOT NULL,
    counters TEXT NOT NULL,
    status TEXT NOT NULL,
    dongle TEXT,
    client_id TEXT REFERENCES clients(id),
    order_id TEXT REFERENCES orders(id),
    limited TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX licenses_client ON licenses(client_id);
CREATE INDEX licenses_order ON licenses(order_id);
CREATE TABLE activations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    license_key TEXT NOT NULL REFERENCES licenses(key),
    binding TEXT NOT NULL,
    activated_at BIGINT NOT NULL
);
CREATE INDEX activations_license ON activations(license_key);
CREATE TABLE leases (
    license_key TEXT NOT NULL REFERENCES licenses(key),
    session TEXT NOT NULL,
    binding TEXT NOT NULL,
    leased_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    borrowed_until BIGINT,
    PRIMARY KEY (license_key, session)
);
CREATE TABLE transfers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    license_key TEXT NOT NULL REFERENCES licenses(key),
    at BIGINT NOT NULL
);
CREATE INDEX transfers_license ON transfers(license_key);
CREATE TABLE trials (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product TEXT NOT NULL,
    binding TEXT NOT NULL,
    edition TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL
);
CREATE TABLE trial_components (
    trial_id BIGINT NOT NULL REFERENCES trials(id),
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX trial_components_lookup ON trial_components(product, name, value);
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
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
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$body$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();

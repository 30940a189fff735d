ALTER TABLE licenses ADD COLUMN update_counter BIGINT NOT NULL DEFAULT 0;
CREATE TABLE returned_serials (
    license_key TEXT NOT NULL REFERENCES licenses(key),
    serial TEXT NOT NULL,
    returned_at BIGINT NOT NULL,
    PRIMARY KEY (license_key, serial)
);

ALTER TABLE activations ADD COLUMN anchor TEXT;
ALTER TABLE activations ADD COLUMN certificate_serial TEXT;
ALTER TABLE leases ADD COLUMN certificate_serial TEXT;
ALTER TABLE leases ADD COLUMN returned_at BIGINT;
ALTER TABLE returned_serials ADD COLUMN kind TEXT NOT NULL DEFAULT 'activation';

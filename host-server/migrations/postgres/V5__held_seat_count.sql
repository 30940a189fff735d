ALTER TABLE leases ADD COLUMN counted INTEGER NOT NULL DEFAULT 1;
ALTER TABLE licenses ADD COLUMN seats_held BIGINT NOT NULL DEFAULT 0;
UPDATE licenses SET seats_held = (SELECT COUNT(*) FROM leases WHERE leases.license_key = licenses.key);
CREATE INDEX leases_counted_end ON leases(license_key, counted, (COALESCE(borrowed_until, expires_at)));

CREATE INDEX transfers_license_at ON transfers(license_key, at);
DROP INDEX transfers_license;

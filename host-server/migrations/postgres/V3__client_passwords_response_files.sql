ALTER TABLE clients ADD COLUMN password_hash TEXT;
CREATE TABLE response_files (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    license_key TEXT NOT NULL REFERENCES licenses(key),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX response_files_license ON response_files(license_key, id);
CREATE INDEX audit_at ON audit(at);

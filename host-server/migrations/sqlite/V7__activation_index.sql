-- Every component of each activation's current binding and of its anchor (a dongle binding is the
-- component named '' whose value is its serial), so activations sharing a component are found
-- through an index instead of by reading all of a license's activations.
CREATE TABLE activation_components (
    activation_id INTEGER NOT NULL REFERENCES activations(id) ON DELETE CASCADE,
    license_key TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (activation_id, name, value)
);
CREATE INDEX activation_components_lookup ON activation_components(license_key, name, value);
INSERT INTO activation_components (activation_id, license_key, name, value)
SELECT a.id, a.license_key, c.key, c.value FROM activations a, json_each(a.binding, '$.fingerprint') c
UNION
SELECT a.id, a.license_key, c.key, c.value FROM activations a, json_each(a.anchor, '$.fingerprint') c
WHERE a.anchor IS NOT NULL
UNION
SELECT a.id, a.license_key, '', json_extract(a.binding, '$.dongle') FROM activations a
WHERE json_extract(a.binding, '$.dongle') IS NOT NULL
UNION
SELECT a.id, a.license_key, '', json_extract(a.anchor, '$.dongle') FROM activations a
WHERE a.anchor IS NOT NULL AND json_extract(a.anchor, '$.dongle') IS NOT NULL;
ALTER TABLE licenses ADD COLUMN activation_count INTEGER NOT NULL DEFAULT 0;
UPDATE licenses SET activation_count =
    (SELECT COUNT(*) FROM activations WHERE activations.license_key = licenses.key);

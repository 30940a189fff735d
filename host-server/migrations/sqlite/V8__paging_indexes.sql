CREATE INDEX leases_borrowed ON leases(license_key, borrowed_until) WHERE borrowed_until IS NOT NULL AND counted = 1;
CREATE INDEX orders_client_id ON orders(client_id, id);

-- Effects change an activation found by its binding (record its certificate's serial, rebind it,
-- delete it): an index, so that costs the same however many activations the license has.
CREATE INDEX activations_binding ON activations(license_key, binding);

-- Effects change an activation found by its binding (record its certificate's serial, rebind it,
-- delete it): an index, so that costs the same however many activations the license has. A hash
-- index, since a binding can be longer than a B-tree entry may be.
CREATE INDEX activations_binding ON activations USING hash (binding);

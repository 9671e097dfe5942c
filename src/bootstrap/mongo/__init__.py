"""MongoDB engine: connect, inspect the live state, compare with the spec, execute operations."""

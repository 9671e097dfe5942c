"""The Redis side of plan/apply: read live state, compare (pure), operations, execute."""

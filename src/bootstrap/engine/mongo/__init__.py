"""The MongoDB side of plan/apply: read live state, compare (pure), operations, execute."""

"""Redis side of plan/apply: eviction policy, queue streams and consumer groups, schedules as data."""

"""The nine collections the shipped MSEDB config declares, in dependency order, for tests over each."""

MSEDB_COLLECTIONS = [
    "users",
    "mailboxes",
    "emailevents",
    "patterns",
    "rules",
    "stagedemails",
    "auditlogs",
    "notifications",
    "webhooksubscriptions",
]

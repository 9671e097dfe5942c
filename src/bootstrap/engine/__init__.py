"""The plan/apply core: operation and plan types, the apply sequence, rendering, the lease lock
and apply history; one subpackage per backend (mongo, redis)."""

"""bootstrap: declarative MongoDB collections, Redis queues and Taskiq wiring from YAML."""

__version__ = "0.2.0"
RELEASE = f"bootstrap {__version__}"  # in apply records and heartbeats: which release wrote them

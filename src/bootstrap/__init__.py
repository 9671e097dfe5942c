"""bootstrap: declarative MongoDB collections, Redis queues and Taskiq wiring from YAML."""

__version__ = "0.2.0"

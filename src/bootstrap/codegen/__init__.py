"""Generate the Taskiq wiring (a small Python package) from the spec, with Jinja2 templates: one
artifact per file (`artifacts`), rendered and hashed per artifact (`render`), written atomically and
checked for staleness by content (`write`)."""

"""Generate the Taskiq wiring (a small Python package) from the spec, with Jinja2 templates."""

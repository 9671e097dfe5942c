"""The spec: YAML in, one validated immutable Spec out (load -> validate -> build)."""

"""The `bootstrap` command: one module per subcommand, each a `run(args) -> exit code`."""

"""`python -m bootstrap`: the same program as the `bootstrap` command."""

from bootstrap.cli.main import entry

entry()

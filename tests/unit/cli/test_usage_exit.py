"""Found walking through the README as a new user: a usage error exits 2 (argparse), which is also
`plan --detailed-exitcode`'s "changes" code."""

from __future__ import annotations

import pytest

from bootstrap.cli.main import main
from tests.conftest import SHIPPED_CONFIG


def test_a_usage_error_of_a_detailed_plan_is_not_read_as_changes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--detailed-exitcode", "--config", str(SHIPPED_CONFIG), "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    assert exited.value.code == 1


@pytest.mark.parametrize("port", ["80000", "-1", "http"])
def test_a_dashboard_port_out_of_range_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything connects (it was an internal error once both servers answered)."""
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", "--config", str(SHIPPED_CONFIG), "--port", port])
    assert exited.value.code == 2
    assert "argument --port:" in capsys.readouterr().err

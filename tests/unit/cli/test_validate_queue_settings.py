"""Middlewares and rate limits in queues.yaml. `bootstrap validate` checks the user middlewares as it
checks handlers (in a process of its own): one that does not import, or is no taskiq middleware, is a
finding at its line; so is a rate-limit window out of range."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG

MODULE = """\
from taskiq import TaskiqMiddleware


class Good(TaskiqMiddleware):
    pass


not_one = 42
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(SHIPPED_CONFIG, root / "config")
    (root / "hooks.py").write_text(MODULE)
    return root


def declare(project: Path, defaults: str, queue: str) -> None:
    path = project / "config" / "queues.yaml"
    text = path.read_text().replace("  max_deliveries: 3 ", f"  middlewares: {defaults}\n  max_deliveries: 3 ", 1)
    text = text.replace("  token-refresh:\n", f"  token-refresh:\n    middlewares: {queue}\n", 1)
    path.write_text(text)


def test_good_middlewares_are_valid_and_reach_the_spec(project: Path) -> None:
    declare(project, '["hooks:Good"]', '[{path: "hooks:Good", kwargs: {}}, "hooks:Good"]')
    spec = load_spec(project / "config", import_handlers=True)
    queues = {q.name: q for q in spec.queues}
    assert [m.path for m in queues["delta-sync"].middlewares] == ["hooks:Good"]
    assert [m.path for m in queues["token-refresh"].middlewares] == ["hooks:Good", "hooks:Good"]
    assert queues["token-refresh"].middlewares[1].where == "queues.yaml queues.token-refresh.middlewares[1]"


def test_bad_middlewares_are_findings_at_their_lines(project: Path) -> None:
    declare(project, '["hooks:not_one"]', '["nowhere.at_all:Thing"]')
    with pytest.raises(ConfigError) as caught:
        load_spec(project / "config", import_handlers=True)
    found = {f.path: f for f in caught.value.findings}
    assert set(found) == {"defaults.middlewares[0]", "queues.token-refresh.middlewares[0]"}
    assert "not a taskiq middleware" in found["defaults.middlewares[0]"].message
    assert "cannot import nowhere" in found["queues.token-refresh.middlewares[0]"].message
    lines = (project / "config" / "queues.yaml").read_text().splitlines()
    assert "hooks:not_one" in lines[found["defaults.middlewares[0]"].line - 1]
    assert "nowhere.at_all" in lines[found["queues.token-refresh.middlewares[0]"].line - 1]


def test_a_malformed_middleware_path_is_a_schema_finding(project: Path) -> None:
    declare(project, '["not a path"]', "[]")
    with pytest.raises(ConfigError) as caught:
        load_spec(project / "config")
    assert any(f.path.startswith("defaults.middlewares") for f in caught.value.findings)


@pytest.mark.parametrize(("per", "message"), [("0s", "too short"), ("2d", "too long")])
def test_a_rate_limit_window_out_of_range_is_a_finding_at_its_line(project: Path, per: str, message: str) -> None:
    path = project / "config" / "queues.yaml"
    path.write_text(
        path.read_text().replace("  token-refresh:\n", f"  token-refresh:\n    rate_limit: {{max: 5, per: {per}}}\n")
    )
    with pytest.raises(ConfigError) as caught:
        load_spec(project / "config")
    (finding,) = caught.value.findings
    assert finding.path == "queues.token-refresh.rate_limit.per" and message in finding.message
    assert "rate_limit" in path.read_text().splitlines()[finding.line - 1]


def test_a_rate_limit_reaches_the_spec(project: Path) -> None:
    path = project / "config" / "queues.yaml"
    path.write_text(
        path.read_text().replace("  max_deliveries: 3 ", "  rate_limit: {max: 10, per: 1s}\n  max_deliveries: 3 ")
    )
    spec = load_spec(project / "config")
    assert {(q.rate_limit.max, q.rate_limit.per) for q in spec.queues if q.rate_limit} == {(10, 1.0)}
    assert all(q.rate_limit for q in spec.queues)

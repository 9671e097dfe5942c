"""What a review of the new-user fixes found (each was a bug): a password quoted in the Redis database
finding, plan on a live option holding a date, an abbreviated --detailed-exitcode, a connect hint for a
variable the config does not read, `up` reloading on editors' leftovers."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bootstrap.cli.main import main
from bootstrap.connect import retry
from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG


def test_a_redis_database_finding_does_not_quote_a_password() -> None:
    # A password starting with digits and holding a '/': urlsplit reads ':2024' as host:port, the
    # rest as the path (the earlier ValueError branch guards "@", the new database branch does not).
    with pytest.raises(ConfigError) as caught:
        load_spec(SHIPPED_CONFIG, {"REDIS_URL": "redis://:2024/s3cret@cache:6379/0"})
    shown = [str(f) for f in caught.value.findings]
    assert not any("s3cret" in line for line in shown), shown


def test_a_rebuild_reason_shows_a_live_partial_filter_with_a_date() -> None:
    from bootstrap.engine.mongo.compare import _rebuild_reason
    from bootstrap.engine.mongo.operations import IndexModel

    when = {"createdAt": {"$gt": datetime(2024, 1, 1, tzinfo=UTC)}}
    live = IndexModel("email_1", (("email", 1),), {"unique": True, "partialFilterExpression": when})
    declared = IndexModel("email_1", (("email", 1),), {"unique": True})
    reason = _rebuild_reason(live, declared, None)
    assert reason is not None and reason.startswith("partialFilterExpression ")


def test_a_usage_error_of_an_abbreviated_detailed_plan_is_not_read_as_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--detailed", "--config", str(SHIPPED_CONFIG), "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    assert exited.value.code == 1


def test_no_variable_hint_for_a_config_that_does_not_read_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bootstrap.cli.common import use_servers_of_up

    config = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    settings = config / "bootstrap.yaml"
    text = settings.read_text()
    written = "${MONGODB_URI:-mongodb://127.0.0.1:27017/msedb}"
    assert written in text
    settings.write_text(text.replace(written, "mongodb://db.internal:27017/msedb"))
    load_spec(config, {})  # a valid config: the uri is hard-coded, MONGODB_URI is not read
    for name in ("MONGODB_URI", "REDIS_URL", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(retry, "HINTS", {})
    use_servers_of_up(config)
    assert "MONGODB_URI" not in retry.HINTS.get("MongoDB", ""), retry.HINTS


def test_an_editors_leftover_does_not_change_ups_config_fingerprint(tmp_path: Path) -> None:
    from bootstrap.local.up import config_fingerprint

    config = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    before = config_fingerprint(config)
    (config / "#bootstrap.yaml#").write_text("half-typed: [")  # emacs autosave
    (config / "queues.yaml~").write_text("old")  # backup
    (config / ".queues.yaml.swp").write_bytes(b"\0")  # vim swap
    load_spec(config, {})  # the loader ignores all three
    assert config_fingerprint(config) == before

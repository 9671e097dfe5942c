"""`plan --out FILE` then `apply --plan FILE`: apply runs the reviewed plan or nothing, on real servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.database import Database

from tests.conftest import Result


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def add_index(config_dir: Path) -> None:
    edit(config_dir, "collections/users.yaml", "indexes:\n", "indexes:\n  - keys: {lastLoginAt: -1}\n")


def saved_plan(cli: Callable[..., Result], config_dir: Path, tmp_path: Path, *flags: str) -> Path:
    saved = tmp_path / "reviewed.json"
    planned = cli("plan", "--config", str(config_dir), "--out", str(saved), *flags)
    assert planned.code == 0, planned.err
    assert f"Saved to {saved}" in planned.out
    return saved


def test_apply_runs_the_reviewed_plan(cli: Callable[..., Result], config_dir: Path, tmp_path: Path,
                                      seed_db: Database[Any]) -> None:  # fmt: skip
    assert cli("apply", "--config", str(config_dir)).code == 0
    add_index(config_dir)
    saved = saved_plan(cli, config_dir, tmp_path)
    document = json.loads(saved.read_text())
    assert document["format_version"] == 1 and document["options"]["prune"] is False
    assert document["fingerprint"].startswith("sha256:") and document["summary"]["create"] == 1
    applied = cli("apply", "--config", str(config_dir), "--plan", str(saved))
    assert applied.code == 0, applied.err
    assert "lastLoginAt_-1" in seed_db.users.index_information()
    # Applied already (by this run, or another pipeline): nothing left to do is no error.
    again = cli("apply", "--config", str(config_dir), "--plan", str(saved))
    assert again.code == 0 and "No changes" in again.out


def test_apply_refuses_a_plan_the_live_state_no_longer_matches(
    cli: Callable[..., Result], config_dir: Path, tmp_path: Path, seed_db: Database[Any]
) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    add_index(config_dir)
    saved = saved_plan(cli, config_dir, tmp_path, "--prune")
    seed_db.users.create_index("displayName")  # by hand, after the review: --prune would now drop it
    seed_db.users.drop_index("email_1")  # and this one is missing: another create
    applied = cli("apply", "--config", str(config_dir), "--prune", "--plan", str(saved))
    assert applied.code == 1
    assert "nothing applied: MongoDB or Redis changed since" in applied.err, applied.err
    assert "not reviewed: - drop index displayName_1" in applied.err, applied.err
    assert "Traceback" not in applied.err
    indexes = seed_db.users.index_information()
    assert "displayName_1" in indexes and "lastLoginAt_-1" not in indexes  # nothing applied


def test_counts_read_from_the_data_may_move_between_review_and_apply(
    cli: Callable[..., Result], config_dir: Path, tmp_path: Path, seed_db: Database[Any]
) -> None:
    """A validator change's 'N existing document(s) would fail' is a description, not the change."""
    assert cli("apply", "--config", str(config_dir)).code == 0
    edit(config_dir, "collections/users.yaml", "  lastLoginAt: date\n", "  lastLoginAt: date\n  nickname: string\n")
    seed_db.users.insert_one({"email": "a@x.io", "nickname": 1}, bypass_document_validation=True)
    saved = saved_plan(cli, config_dir, tmp_path)
    assert "1 existing document(s) would fail" in saved.read_text()
    seed_db.users.insert_one({"email": "b@x.io", "nickname": 2}, bypass_document_validation=True)
    applied = cli("apply", "--config", str(config_dir), "--plan", str(saved))
    assert applied.code == 0, applied.err


def test_apply_refuses_another_config_or_other_flags(
    cli: Callable[..., Result], config_dir: Path, tmp_path: Path, seed_db: Database[Any]
) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    add_index(config_dir)
    saved = saved_plan(cli, config_dir, tmp_path)
    flags = cli("apply", "--config", str(config_dir), "--prune", "--plan", str(saved))
    assert flags.code == 1 and "was planned with no flags, apply runs with --prune" in flags.err, flags.err
    edit(config_dir, "collections/users.yaml", "  - keys: {lastLoginAt: -1}\n", "  - keys: {lastLoginAt: 1}\n")
    config = cli("apply", "--config", str(config_dir), "--plan", str(saved))
    assert config.code == 1 and "the config changed since" in config.err, config.err
    assert "lastLoginAt_1" not in seed_db.users.index_information()


def test_a_file_that_is_no_saved_plan_is_a_clear_error(cli: Callable[..., Result], config_dir: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    cases = {"missing.json": None, "text.json": "not json", "other.json": '{"database": "x"}'}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        result = cli("apply", "--config", str(config_dir), "--plan", str(path))
        assert result.code == 1 and f"--plan {path}" in result.err and "Traceback" not in result.err, result.err

"""rev7 review: the plan's duplicate check for a unique index (`live.duplicate_sample`) groups whole
field values, but a unique index compares what it indexes: each element of an array (multikey), and
strings under the index's collation. Documents that share one array element, or differ only in case
under a case-insensitive collation, pass the check, so the plan is not blocked, and apply with
--allow-rebuild drops the old index (the guard in execute uses the same check) before the unique
build fails on E11000: the collection is left without the index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.database import Database

from tests.conftest import Result


def _declare(config_dir: Path, field: str, index: str) -> None:
    users = config_dir / "collections" / "users.yaml"
    text = users.read_text().replace("  lastLoginAt: date\n", f"  lastLoginAt: date\n{field}", 1)
    users.write_text(text + index)


def test_unique_over_arrays_sharing_an_element_is_blocked_and_drops_nothing(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    _declare(config_dir, "  aliases: {type: array, items: string}\n", "  - keys: {aliases: 1}\n    unique: true\n")
    seed_db.users.insert_many([{"email": "a@x.io", "aliases": ["ann", "boss"]},
                               {"email": "b@x.io", "aliases": ["boss", "bob"]}])  # fmt: skip
    seed_db.users.create_index("aliases")  # the old, not unique index
    planned = cli("plan", "--config", str(config_dir), "--allow-rebuild")
    applied = cli("apply", "--config", str(config_dir), "--allow-rebuild")
    kept = [ix["name"] for ix in seed_db.users.list_indexes() if dict(ix["key"]) == {"aliases": 1}]
    assert kept == ["aliases_1"], f"the old index was dropped and not rebuilt: {applied.err}"
    assert "aliases_1 cannot be made unique" in planned.out, planned.out


def test_unique_rebuild_with_a_case_insensitive_collation_over_case_duplicates_drops_nothing(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    users = config_dir / "collections" / "users.yaml"
    users.write_text(users.read_text().replace("  - keys: {email: 1}\n    unique: true\n",
                                               "  - keys: {email: 1}\n    unique: true\n"
                                               "    collation: {locale: en, strength: 2}\n", 1))  # fmt: skip
    seed_db.users.insert_many([{"email": "Ann@x.io"}, {"email": "ann@x.io"}])
    seed_db.users.create_index("email")  # the old index: no collation, not unique
    planned = cli("plan", "--config", str(config_dir), "--allow-rebuild")
    applied = cli("apply", "--config", str(config_dir), "--allow-rebuild")
    kept = [ix["name"] for ix in seed_db.users.list_indexes() if dict(ix["key"]) == {"email": 1}]
    assert kept == ["email_1"], f"the old index was dropped and not rebuilt: {applied.err}"
    assert "email_1 cannot be built" in planned.out, planned.out

"""The MongoDB compare, pure: live state built by hand (as listCollections/listIndexes report it), a
small spec, and the exact operation list, as alembic tests its autogenerate diffs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.live import LiveCollection, LiveIndex, LiveState, normalise_index
from bootstrap.engine.mongo.operations import (
    Blocked,
    ChangeIndex,
    CreateCollection,
    CreateIndexes,
    DropIndex,
    IndexModel,
    KeepIndex,
    RebuildIndex,
    UpdateValidator,
)
from bootstrap.engine.mongo.server import ServerRole, role_from_hello
from bootstrap.engine.mongo.validator import collection_validator
from bootstrap.engine.render import applied_summary, counts, summary
from bootstrap.spec.model import Collection, Field, FieldType, Index
from tests.unit.engine.build import spec_of

EMAIL = Index(keys=(("email", 1),), name="email_1", unique=True)
SEEN = Index(keys=(("seenAt", 1),), name="seenAt_1", ttl=3600)
USERS = Collection(
    name="users",
    model="User",
    fields=(Field("email", FieldType.STRING, required=True, nullable=False), Field("seenAt", FieldType.DATE)),
    indexes=(EMAIL, SEEN),
)
SPEC = spec_of((USERS,))
VALIDATOR = collection_validator(USERS)

# The declared indexes as createIndexes takes them.
EMAIL_MODEL = IndexModel("email_1", (("email", 1),), {"unique": True})
SEEN_MODEL = IndexModel("seenAt_1", (("seenAt", 1),), {"expireAfterSeconds": 3600})
REBUILD_HINT = "must be rebuilt (dropped and created again); run with --allow-rebuild"
# A unique index may be refused by duplicates, which only `plan` reads.
UNIQUE_REBUILD_HINT = (
    "must be rebuilt (dropped and created again); check it with `bootstrap plan --allow-rebuild` (it reads the "
    "data for duplicates), then apply with --allow-rebuild"
)


def server_index(name: str, key: dict[str, Any], **options: Any) -> LiveIndex:
    """An index as listIndexes reports it (with the server's noise), normalised as live.py reads it."""
    return normalise_index({"v": 2, "key": key, "name": name, **options})


MATCHING_INDEXES = (
    server_index("email_1", {"email": 1}, unique=True),
    server_index("seenAt_1", {"seenAt": 1.0}, expireAfterSeconds=3600, background=False),
)


def live_users(
    *indexes: LiveIndex,
    validator: dict[str, Any] | None = VALIDATOR,
    level: str = "strict",
    action: str = "error",
) -> LiveState:
    users = LiveCollection("users", validator, level, action, indexes or MATCHING_INDEXES)
    return LiveState("t", {"users": users})


def test_nothing_to_do_is_an_empty_plan() -> None:
    plan = compare(SPEC, live_users())
    assert plan.operations == ()
    assert summary(plan) == "No changes: the database matches the spec."


def test_missing_collection_is_created_with_its_validator_then_all_its_indexes_in_one_batch() -> None:
    plan = compare(SPEC, LiveState("t"))
    assert plan.operations == (
        CreateCollection("users", VALIDATOR, "strict", "error"),
        CreateIndexes("users", (EMAIL_MODEL, SEEN_MODEL)),
    )
    assert counts(plan.operations)["create"] == 3  # the collection and each index
    assert summary(plan) == "Plan: 3 to create, 0 to change in place, 0 to rebuild, 0 to drop."


def test_missing_index_is_created() -> None:
    plan = compare(SPEC, live_users(MATCHING_INDEXES[0]))
    assert plan.operations == (CreateIndexes("users", (SEEN_MODEL,)),)


def test_changed_ttl_is_changed_in_place() -> None:
    ttl_2h = server_index("seenAt_1", {"seenAt": 1}, expireAfterSeconds=7200)
    plan = compare(SPEC, live_users(MATCHING_INDEXES[0], ttl_2h))
    assert plan.operations == (ChangeIndex("users", "seenAt_1", (("expireAfterSeconds", 7200, 3600),)),)
    assert plan.changes[0].describe() == ["change index seenAt_1: ttl 2h -> 1h (collMod, no rebuild)"]
    assert counts(plan.operations)["change"] == 1


def test_changed_unique_is_blocked_without_allow_rebuild_and_rebuilt_with_it() -> None:
    live = live_users(server_index("email_1", {"email": 1}), MATCHING_INDEXES[1])
    before = IndexModel("email_1", (("email", 1),), {})
    rebuild = RebuildIndex("users", "email_1", before, EMAIL_MODEL, "unique unset -> true")

    blocked = compare(SPEC, live)
    assert blocked.operations == (Blocked("users", rebuild, f"index email_1 {UNIQUE_REBUILD_HINT}"),)
    assert blocked.changes == () and len(blocked.blocked) == 1

    plan = compare(SPEC, live, allow_rebuild=True)
    assert plan.operations == (rebuild, CreateIndexes("users", (EMAIL_MODEL,), rebuilt=("email_1",)))
    # The rebuild counts once, as a rebuild: its recreation is not also a create.
    assert {k: v for k, v in counts(plan.operations).items() if v} == {"rebuild": 1}


def on_server(live: LiveState, wire_version: int) -> LiveState:
    return replace(live, server=ServerRole(wire_version=wire_version))


def test_unique_added_is_made_unique_in_place_from_mongodb_6() -> None:
    live = live_users(server_index("email_1", {"email": 1}), MATCHING_INDEXES[1])
    plan = compare(SPEC, on_server(live, 17))  # 6.0; 16 (5.3) rebuilds, as above
    assert plan.operations == (ChangeIndex("users", "email_1", (("unique", False, True),)),)
    assert plan.changes[0].describe() == ["change index email_1: unique false -> true (collMod, no rebuild)"]
    assert compare(SPEC, on_server(live, 16)).blocked


def test_unique_removed_is_a_rebuild_on_every_server() -> None:
    spec = spec_of((replace(USERS, indexes=(replace(EMAIL, unique=False), SEEN)),))
    for wire in (13, 17, 25):
        (op,) = compare(spec, on_server(live_users(), wire)).operations
        assert isinstance(op, Blocked) and isinstance(op.wanted, RebuildIndex), (wire, op)
        assert op.wanted.reason == "unique true -> unset"


def test_unique_added_with_another_option_is_a_rebuild() -> None:
    """collMod makes an index unique, nothing else at once: unique and sparse is a rebuild."""
    spec = spec_of((replace(USERS, indexes=(replace(EMAIL, sparse=True), SEEN)),))
    live = live_users(server_index("email_1", {"email": 1}), MATCHING_INDEXES[1])
    (op,) = compare(spec, on_server(live, 25)).operations
    assert isinstance(op, Blocked) and isinstance(op.wanted, RebuildIndex)
    assert op.wanted.reason == "sparse unset -> true"


def test_ttl_added_is_set_in_place_from_mongodb_5_1_and_removed_by_a_rebuild() -> None:
    no_ttl = server_index("seenAt_1", {"seenAt": 1})
    live = live_users(MATCHING_INDEXES[0], no_ttl)
    plan = compare(SPEC, on_server(live, 14))
    assert plan.operations == (ChangeIndex("users", "seenAt_1", (("expireAfterSeconds", None, 3600),)),)
    assert plan.changes[0].describe() == ["change index seenAt_1: ttl unset -> 1h (collMod, no rebuild)"]
    (before_5_1,) = compare(SPEC, on_server(live, 13)).operations
    assert isinstance(before_5_1, Blocked) and before_5_1.wanted.reason == "ttl added"  # type: ignore[attr-defined]
    no_ttl_declared = spec_of((replace(USERS, indexes=(EMAIL, replace(SEEN, ttl=None))),))
    (removed,) = compare(no_ttl_declared, on_server(live_users(), 25)).operations
    assert isinstance(removed, Blocked) and removed.wanted.reason == "ttl removed"  # type: ignore[attr-defined]


def test_index_under_another_name_is_a_rebuild() -> None:
    live = live_users(server_index("by_email", {"email": 1}, unique=True), MATCHING_INDEXES[1])
    rebuild = RebuildIndex(
        "users", "by_email", IndexModel("by_email", (("email", 1),), {"unique": True}), EMAIL_MODEL,
        "renamed by_email -> email_1",
    )
    assert compare(SPEC, live).operations == (Blocked("users", rebuild, f"index by_email {UNIQUE_REBUILD_HINT}"),)
    assert compare(SPEC, live, allow_rebuild=True).operations == (
        rebuild,
        CreateIndexes("users", (EMAIL_MODEL,), rebuilt=("email_1",)),
    )


def test_undeclared_index_is_kept_or_dropped_with_prune() -> None:
    extra = server_index("name_1", {"name": 1}, sparse=True)
    live = live_users(*MATCHING_INDEXES, extra)
    model = IndexModel("name_1", (("name", 1),), {"sparse": True})

    kept = compare(SPEC, live)
    assert kept.operations == (KeepIndex("users", model),)
    assert kept.changes == ()
    assert summary(kept) == "No changes: the database matches the spec (1 undeclared index(es) kept)."

    assert compare(SPEC, live, prune=True).operations == (DropIndex("users", model),)


def test_changed_validator_is_updated_and_its_differences_named() -> None:
    without_seen = collection_validator(replace(USERS, fields=USERS.fields[:1]))
    plan = compare(SPEC, live_users(validator=without_seen))
    assert plan.operations == (
        UpdateValidator("users", VALIDATOR, "strict", "error", "strict", "error", ("+ field seenAt",)),
    )


def test_missing_validator_is_added() -> None:
    plan = compare(SPEC, live_users(validator=None))
    assert plan.operations == (
        UpdateValidator("users", VALIDATOR, "strict", "error", "strict", "error", ("validator: none -> from spec",)),
    )


def test_changed_level_and_action_alone_are_updated_without_a_validator_line() -> None:
    plan = compare(SPEC, live_users(level="moderate", action="warn"))
    assert plan.operations == (UpdateValidator("users", VALIDATOR, "strict", "error", "moderate", "warn", ()),)
    assert plan.changes[0].describe() == [
        "change validator of users (collMod; existing documents are not rechecked)",
        "  validation: level moderate -> strict, action warn -> error",
    ]


def test_a_view_under_the_collections_name_is_blocked() -> None:
    view = LiveCollection("users", None, "strict", "error", is_view=True)
    plan = compare(SPEC, LiveState("t", {"users": view}))
    assert plan.operations == (
        Blocked("users", CreateCollection("users", VALIDATOR, "strict", "error"),
                "'users' exists as a view; drop or rename it by hand"),
    )


def test_undeclared_collections_are_never_looked_at() -> None:
    other = LiveCollection("legacy", None, "off", "warn", (server_index("x_1", {"x": 1}),))
    live = LiveState("t", {**live_users().collections, "legacy": other})
    assert compare(SPEC, live, prune=True).operations == ()


def test_in_place_changes_then_one_create_batch_per_collection_then_pruned_drops() -> None:
    """An undeclared index is dropped after the new ones are built: it serves queries (and keeps its
    uniqueness) until they exist, and stays if their build fails."""
    live = live_users(server_index("seenAt_1", {"seenAt": 1}, expireAfterSeconds=60), server_index("old_1", {"old": 1}))
    plan = compare(SPEC, live, prune=True)
    assert plan.operations == (
        ChangeIndex("users", "seenAt_1", (("expireAfterSeconds", 60, 3600),)),
        CreateIndexes("users", (EMAIL_MODEL,)),
        DropIndex("users", IndexModel("old_1", (("old", 1),), {})),
    )
    assert summary(plan) == "Plan: 1 to create, 1 to change in place, 0 to rebuild, 1 to drop."
    # apply reports the same numbers once it has run exactly these operations
    assert applied_summary(plan.changes) == "Applied: 1 created, 1 changed in place, 0 rebuilt, 1 dropped."


def test_option_values_read_the_same_in_every_plan_line() -> None:
    """`hidden false -> true` as `unique unset -> true` reads in a rebuild's reason (not Python's
    False/True/None)."""
    line = ChangeIndex("users", "email_1", (("hidden", False, True),)).describe()
    assert line == ["change index email_1: hidden false -> true (collMod, no rebuild)"]
    assert ChangeIndex("users", "email_1", (("hidden", None, True),)).describe()[0].startswith(
        "change index email_1: hidden unset -> true"
    )


def test_a_ttl_index_on_a_capped_collection_is_blocked_before_mongodb_7_1_only() -> None:
    capped = replace(live_users(MATCHING_INDEXES[0]).collections["users"], capped=True)
    for wire_version, blocked in ((21, True), (22, False), (None, False)):  # 7.0, 7.1, unknown
        live = LiveState("t", {"users": capped}, ServerRole(wire_version=wire_version))
        [op] = compare(SPEC, live).operations
        assert isinstance(op, Blocked) == blocked, (wire_version, op)
        if blocked:
            assert "capped collection, which takes no TTL index before MongoDB 7.1 (seenAt_1)" in op.reason
    assert role_from_hello({"ok": 1, "maxWireVersion": 25}).wire_version == 25

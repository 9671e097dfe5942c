"""Index key paths (`resolve_field`), default index names, and the small check helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.spec.build import default_index_name
from bootstrap.spec.checks import cron_problem, resolve_field, value_problem
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Field, FieldType, Spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"

T = FieldType
FIELDS = (
    Field("email", T.STRING),
    Field("sender", T.OBJECT, fields=(Field("name", T.STRING), Field("domain", T.STRING))),
    Field("meta", T.OBJECT, fields=(Field("inner", T.OBJECT, fields=(Field("at", T.DATE),)),)),
    Field("free", T.OBJECT),  # no declared fields: free-form
    Field("details", T.ANY),
    Field("tags", T.ARRAY, items=Field("[]", T.STRING)),
    Field("untyped", T.ARRAY),
    Field(
        "evidence",
        T.ARRAY,
        items=Field("[]", T.OBJECT, fields=(Field("messageId", T.STRING), Field("at", T.DATE))),
    ),
    Field("matrix", T.ARRAY, items=Field("[]", T.ARRAY, items=Field("[]", T.INT))),
    Field("links", T.MAP, values=Field("{}", T.STRING)),
    Field("seen", T.MAP, values=Field("{}", T.DATE)),
    Field("folders", T.MAP, values=Field("{}", T.OBJECT, fields=(Field("count", T.INT),))),
    Field("bag", T.MAP),
)


def resolved(path: str, timestamps: bool = False) -> tuple[str, FieldType] | bool | None:
    found = resolve_field(FIELDS, path, timestamps)
    return found if found is None or isinstance(found, bool) else (found.name, found.type)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("email", ("email", T.STRING)),
        ("_id", ("_id", T.OBJECT_ID)),
        ("sender", ("sender", T.OBJECT)),
        ("sender.domain", ("domain", T.STRING)),
        ("meta.inner.at", ("at", T.DATE)),
        # arrays are transparent: the path names their elements, with or without a position
        ("tags", ("[]", T.STRING)),
        ("tags.0", ("[]", T.STRING)),
        ("evidence.messageId", ("messageId", T.STRING)),
        ("evidence.0.messageId", ("messageId", T.STRING)),
        ("evidence.at", ("at", T.DATE)),
        ("matrix", ("[]", T.INT)),
        ("untyped", ("untyped", T.ARRAY)),
        # a map path names the map, then one key level, then inside its values
        ("links", ("links", T.MAP)),
        ("links.inbox", ("{}", T.STRING)),
        ("seen", ("seen", T.MAP)),
        ("seen.inbox", ("{}", T.DATE)),
        ("folders.inbox.count", ("count", T.INT)),
        ("bag", ("bag", T.MAP)),
        # free-form parts accept any path below them
        ("free.anything", True),
        ("free.a.b.c", True),
        ("details.x", True),
        ("details.x.y", True),
        ("untyped.x", True),
        ("bag.key", True),
        ("bag.key.deeper", True),
    ],
)
def test_resolves(path: str, expected: tuple[str, FieldType] | bool) -> None:
    assert resolved(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "nope",
        "Email",  # case matters
        "sender.nope",
        "sender.domain.deeper",  # into a string
        "email.x",
        "nope.domain",
        "meta.inner.nope",
        "evidence.nope",
        "tags.x",
        "links.inbox.deeper",  # map values are strings
        "folders.inbox.nope",
        "_id.x",
        "createdAt",  # only with timestamps
        "",
        "sender.",
        ".sender",
    ],
)
def test_does_not_resolve(path: str) -> None:
    assert resolved(path) is None


def test_timestamp_fields_exist_only_with_timestamps() -> None:
    assert resolved("createdAt", timestamps=True) == ("createdAt", T.DATE)
    assert resolved("updatedAt", timestamps=True) == ("updatedAt", T.DATE)
    assert resolved("createdAt.x", timestamps=True) is None
    assert resolved("updatedAt") is None


@pytest.fixture(scope="module")
def shipped() -> Spec:
    return load_spec(SHIPPED, {})


def test_every_shipped_index_key_resolves(shipped: Spec) -> None:
    for coll in shipped.collections:
        for index in coll.indexes:
            for key, _ in index.keys:
                assert resolve_field(coll.fields, key, coll.timestamps) not in (None, True), (coll.name, key)


def test_shipped_dotted_paths(shipped: Spec) -> None:
    events, patterns = shipped.collection("emailevents"), shipped.collection("patterns")
    domain = resolve_field(events.fields, "sender.domain", events.timestamps)
    assert isinstance(domain, Field) and domain.type is T.STRING
    sender_domain = resolve_field(patterns.fields, "condition.senderDomain", patterns.timestamps)
    assert isinstance(sender_domain, Field) and sender_domain.type is T.STRING
    at = resolve_field(patterns.fields, "evidence.timestamp", patterns.timestamps)
    assert isinstance(at, Field) and at.type is T.DATE
    assert resolve_field(events.fields, "sender.domian", events.timestamps) is None


# --- default index names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "name"),
    [
        ((("email", 1),), "email_1"),
        ((("createdAt", -1),), "createdAt_-1"),
        ((("userId", 1), ("sender.domain", 1), ("timestamp", -1)), "userId_1_sender.domain_1_timestamp_-1"),
        (
            (("userId", 1), ("mailboxId", 1), ("messageId", 1), ("eventType", 1)),
            "userId_1_mailboxId_1_messageId_1_eventType_1",
        ),
        ((("subscriptionId", "hashed"),), "subscriptionId_hashed"),
        ((("location", "2dsphere"),), "location_2dsphere"),
        ((("body", "text"), ("userId", 1)), "body_text_userId_1"),
    ],
)
def test_default_index_name_follows_mongodb(keys: tuple[tuple[str, int | str], ...], name: str) -> None:
    assert default_index_name(keys) == name


def test_shipped_index_names(shipped: Spec) -> None:
    names = {coll.name: [ix.name for ix in coll.indexes] for coll in shipped.collections}
    assert names["emailevents"] == [
        "userId_1_sender.domain_1_timestamp_-1",
        "userId_1_eventType_1_timestamp_-1",
        "userId_1_mailboxId_1_messageId_1_eventType_1",
        "timestamp_1",
    ]
    assert names["users"] == ["email_1", "microsoftId_1"]
    assert names["auditlogs"][0] == "userId_1_action_1_createdAt_-1"


# --- cron expressions and values -----------------------------------------------------------------


@pytest.mark.parametrize("expression", ["0 */2 * * *", "0 2 * * *", "*/15 * * * *", "0 9 * * mon-fri", "30 4 1,15 * *"])
def test_valid_cron(expression: str) -> None:
    assert cron_problem(expression) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 2 * * *", "has 6 field(s) (expected 5"),
        ("* * * *", "has 4 field(s)"),
        ("", "has 0 field(s)"),
        ("61 2 * * *", "is not a valid cron expression"),
        ("0 25 * * *", "is not a valid cron expression"),
        ("0 0 32 * *", "is not a valid cron expression"),
        ("0 0 * 13 *", "is not a valid cron expression"),
        ("0 0 * * mon-fry", "is not a valid cron expression"),
        ("@daily", "has 1 field(s)"),
    ],
)
def test_invalid_cron(expression: str, message: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (Field("n", T.INT), 5, None),
        (Field("n", T.INT), 2**31, "does not fit in a 32-bit int"),
        (Field("n", T.INT), 1.5, "is not of type int"),
        (Field("n", T.NUMBER), True, "is not of type number"),
        (Field("n", T.NUMBER, minimum=0, maximum=100), 150, "above max 100"),
        (Field("n", T.NUMBER, minimum=0), -1, "below min 0"),
        (Field("b", T.BOOL), "yes", "is not of type bool"),
        (Field("s", T.STRING), False, "YAML reads unquoted yes, no, on, off, true and false as booleans"),
        (Field("s", T.STRING, enum=("a", "b")), "c", "is not one of the enum values (a, b)"),
        (Field("s", T.STRING, pattern="^[a-z]+$"), "ABC", "does not match pattern"),
        (Field("s", T.STRING, max_length=2), "abc", "longer than max_length 2"),
        (Field("d", T.DATE), "now", None),
        (Field("d", T.DATE), "2024-01-31T00:00:00Z", None),
        (Field("d", T.DATE), "yesterday", "is not a date"),
        (Field("o", T.OBJECT_ID), "0123456789abcdef01234567", None),
        (Field("o", T.OBJECT_ID), "xyz", "is not an ObjectId"),
        (Field("a", T.ARRAY, items=Field("[]", T.INT)), [1, "x"], "item 'x' is not of type int"),
        (Field("a", T.ARRAY, max_items=1), [1, 2], "more than max_items 1"),
        (Field("m", T.MAP), {"a": 1}, None),
        (Field("x", T.ANY), object(), None),
        (Field("s", T.STRING, nullable=False), None, "null is not allowed"),
        (Field("s", T.STRING), None, None),
    ],
)
def test_value_problem(field: Field, value: object, problem: str | None) -> None:
    found = value_problem(field, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found

"""The shortcuts `validate` takes around two slow imports: a MongoDB URI or a cron expression that is
"plain" must be one pymongo's parser and croniter accept; anything else still goes to them."""

from __future__ import annotations

import pytest
from croniter import CroniterBadDateError, croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo.uri_parser import parse_uri

from bootstrap.spec.checks import cron_problem, plain_cron, plain_mongodb_uri

hosts = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
ports = st.none() | st.integers(1, 65535) | st.integers(65536, 99999)
databases = st.none() | st.from_regex(r"[A-Za-z0-9_-]{0,10}", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(hosts, ports), min_size=1, max_size=3), databases)
def test_a_plain_uri_is_one_pymongo_accepts(nodes: list[tuple[str, int | None]], database: str | None) -> None:
    uri = "mongodb://" + ",".join(host if port is None else f"{host}:{port}" for host, port in nodes)
    if database is not None:
        uri += f"/{database}"
    if plain_mongodb_uri(uri):
        parse_uri(uri)  # raises if pymongo disagrees
    else:
        assert any(port is not None and port > 65535 for _, port in nodes)


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://127.0.0.1:27017/msedb",
        "mongodb://db.internal/msedb",
        "mongodb://a:1,b:2,c/x_y-z",
        "mongodb://localhost",
        "mongodb://localhost/",
    ],
)
def test_plain_uris(uri: str) -> None:
    assert plain_mongodb_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://user:pw@host/db",  # credentials: pymongo checks their escaping
        "mongodb://host/db?replicaSet",  # options: pymongo knows which exist
        "mongodb://host:0/db",
        "mongodb://host:99999/db",
        "mongodb://host:07/db",
        "mongodb://[::1]:27017/db",
        "mongodb://host,/db",
        "mongodb:///db",
        "mongodb://host/db/more",
        "mongodb://host/db.coll",
        "mongodb+srv://cluster.example.com/db",
    ],
)
def test_anything_else_is_left_to_pymongo(uri: str) -> None:
    assert not plain_mongodb_uri(uri)


RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@st.composite
def cron_fields(draw: st.DrawFn) -> list[str]:
    fields = []
    for low, high in RANGES:
        kind = draw(st.sampled_from(["star", "step", "numbers"]))
        if kind == "star":
            fields.append("*")
        elif kind == "step":
            fields.append(f"*/{draw(st.integers(0, high + 1))}")
        else:
            numbers = draw(st.lists(st.integers(max(0, low - 1), high + 1), min_size=1, max_size=3))
            fields.append(",".join(map(str, numbers)))
    return fields


@settings(max_examples=1000, deadline=None)
@given(cron_fields())
def test_a_plain_cron_expression_is_one_croniter_accepts(fields: list[str]) -> None:
    expression = " ".join(fields)
    if plain_cron(fields):
        assert croniter.is_valid(expression), expression
        assert (cron_problem(expression) is None) is fires(expression), expression


def fires(expression: str) -> bool:
    """croniter's own answer: is there a next fire time?"""
    try:
        croniter(expression).get_next(float)
    except CroniterBadDateError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(1, 31), min_size=1, max_size=3), st.lists(st.integers(1, 12), min_size=1, max_size=3))
def test_a_plain_cron_on_days_of_month_fires_exactly_when_croniter_does(days: list[int], months: list[int]) -> None:
    expression = f"0 0 {','.join(map(str, days))} {','.join(map(str, months))} *"
    assert plain_cron(expression.split())
    assert (cron_problem(expression) is None) is fires(expression), expression


@pytest.mark.parametrize("expression", ["0 2 * * *", "0 */2 * * *", "*/15 * * * *", "0,30 9 1 1,7 0", "59 23 31 12 7"])
def test_plain_cron_expressions(expression: str) -> None:
    assert plain_cron(expression.split())


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ("0 9 * * MON-FRI", True),  # names and ranges: croniter decides
        ("0 0 L * *", True),
        ("*/0 * * * *", False),
        ("60 * * * *", False),
        ("0 24 * * *", False),
        ("0 0 0 * *", False),
        ("0 0 * 13 *", False),
        ("0 0 * * 8", False),
    ],
)
def test_anything_else_is_left_to_croniter(expression: str, valid: bool) -> None:
    assert not plain_cron(expression.split())
    assert (cron_problem(expression) is None) is valid

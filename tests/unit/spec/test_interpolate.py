"""`${VAR}` interpolation: every operator, nesting, `$$`, and the errors users see."""

from __future__ import annotations

import pytest

from bootstrap.errors import InterpolationError
from bootstrap.spec.interpolate import interpolate

ENV = {"SET": "value", "EMPTY": "", "HOST": "db.internal", "PORT": "6380"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("${SET}", "value"),
        ("${EMPTY}", ""),
        ("pre-${SET}-post", "pre-value-post"),
        ("${SET}${SET}", "valuevalue"),
        # :- default when unset or empty
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${SET:-fallback}", "value"),
        ("${UNSET:-}", ""),
        # - default only when unset
        ("${UNSET-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${SET-fallback}", "value"),
        # :? and ? pass a set value through
        ("${SET:?must be set}", "value"),
        ("${SET?must be set}", "value"),
        ("${EMPTY?must be set}", ""),
        # defaults may contain ':' '/' '-' '?' and nest further expressions
        ("${UNSET:-mongodb://127.0.0.1:27017/msedb}", "mongodb://127.0.0.1:27017/msedb"),
        ("${UNSET:-a-b?c}", "a-b?c"),
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-redis://${HOST:-127.0.0.1}:${PORT:-6379}/0}", "redis://db.internal:6380/0"),
        ("${UNSET:-redis://${NO_HOST:-127.0.0.1}:${NO_PORT:-6379}/0}", "redis://127.0.0.1:6379/0"),
        # $$ is a literal $, a lone $ is kept
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("$$$${SET}", "$${SET}"),
        ("$$${SET}", "$value"),
        ("price: 5$", "price: 5$"),
        ("$SET", "$SET"),
        ("a$b", "a$b"),
        ("${UNSET:-$$}", "$"),
        # a '}' after a complete expression is plain text
        ("${SET}}", "value}"),
        ("${UNSET:-x}y}", "xy}"),
        ("_${_A1:-ok}", "_ok"),
    ],
)
def test_interpolates(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize(
    "text",
    ["${SET:-${UNSET}}", "${SET:-${UNSET:?boom}}", "${SET:?${UNSET}}", "${SET-${UNSET}}", "${SET?${UNSET}}"],
)
def test_unused_default_or_message_is_not_expanded(text: str) -> None:
    # Like a shell: production sets MONGODB_URI, so ${MONGODB_URI:-${LOCAL_URI}} must not need LOCAL_URI.
    assert interpolate(text, ENV) == "value"


@pytest.mark.parametrize("text", ["${SET:-${}}", "${SET:-${1x}}", "${SET:-${UNSET x}}", "${SET:-${UNSET"])
def test_unused_default_must_still_be_well_formed(text: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, ENV)


def test_value_is_not_interpolated_again() -> None:
    assert interpolate("${NESTED}", {"NESTED": "${SET}"}) == "${SET}"
    assert interpolate("${NESTED}", {"NESTED": "$$"}) == "$$"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET}", "environment variable UNSET is not set and has no default (set it, or write ${UNSET:-default})"),
        ("x ${UNSET} y", "UNSET is not set and has no default"),
        ("${UNSET:?set it to the cluster URI}", "environment variable UNSET is not set: set it to the cluster URI"),
        ("${EMPTY:?needed}", "environment variable EMPTY is not set: needed"),
        ("${UNSET?needed}", "UNSET is not set: needed"),
        ("${UNSET:?}", "UNSET is not set: required"),
        ("${UNSET:-${ALSO_UNSET}}", "ALSO_UNSET is not set and has no default"),
        ("${", "invalid variable name after '${'"),
        ("${}", "invalid variable name after '${' at '}'"),
        ("${1ABC}", "invalid variable name after '${' at '1ABC}'"),
        ("${-x}", "invalid variable name"),
        ("${ SET}", "invalid variable name"),
        ("${SET", "unexpected 'end of text' in ${SET...}"),
        ("${SET x}", "unexpected ' ' in ${SET...} (expected '}', ':-default' or ':?message')"),
        ("${SET:x}", "unexpected ':' in ${SET...}"),
        ("${SET.NAME}", "unexpected '.'"),
        ("${UNSET:-unclosed", "unclosed '${' (expected '}')"),
        ("${UNSET:-${INNER:-x}", "unclosed '${'"),
        ("${UNSET:?no end", "unclosed '${'"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(text, ENV)
    assert message in str(caught.value)


def test_error_is_a_value_error() -> None:
    assert issubclass(InterpolationError, ValueError)


def test_error_never_shows_values_of_other_variables() -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate("${SECRET_URI}/${UNSET}", {"SECRET_URI": "mongodb://u:hunter2@h/db"})
    assert "hunter2" not in str(caught.value)

"""Review rev5: the new lone-surrogate finding refuses a surrogate *pair*, and tells the user to
write a pair.

`description: "\\ud83d\\ude00 mail"` is how JSON (and a config written by `json.dumps`, YAML 1.2
being a superset of JSON) spells an emoji; PyYAML decodes each `\\u` escape on its own, so the
string holds two surrogates, and yamlload now reports `\\ud83d\\ude00 is a lone surrogate ...:
write the character it stands for, or a pair` (seen) -- the user wrote a pair."""

from __future__ import annotations

from bootstrap.spec.yamlload import load_document


def test_a_surrogate_pair_is_the_character_it_stands_for() -> None:
    document, findings = load_document('description: "\\ud83d\\ude00 mail"\n', "x.yaml", {})
    assert [str(f) for f in findings] == []
    assert document is not None and document.data == {"description": "\U0001f600 mail"}

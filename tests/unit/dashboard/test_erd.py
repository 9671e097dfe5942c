"""The spec as a diagram: every `ref` (top level, nested, in arrays) becomes a relation; Mermaid
and SVG show each collection and each relation."""

from __future__ import annotations

import re
from pathlib import Path

from bootstrap.dashboard import erd
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec

ROOT = Path(__file__).resolve().parents[3]
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}


def shipped() -> Spec:
    return load_spec(ROOT / "config", env=ENV)


def test_relations_of_the_shipped_spec() -> None:
    d = erd.diagram(shipped())
    assert {e.name for e in d.entities} == {c.name for c in shipped().collections}
    found = {(r.source, r.path, r.target, r.required) for r in d.relations}
    assert ("stagedemails", "userId", "users", True) in found
    assert ("auditlogs", "mailboxId", "mailboxes", False) in found
    # A reference inside a sub-document is found too, with its dotted path.
    assert any(r.source == "emailevents" and r.path.endswith(".automatedByRule") and r.target == "rules"
               for r in d.relations)  # fmt: skip


def test_mermaid_has_an_entity_per_collection_and_a_line_per_reference() -> None:
    d = erd.diagram(shipped())
    text = erd.mermaid(d)
    assert text.startswith("erDiagram\n")
    for entity in d.entities:
        assert f"    {entity.name} {{" in text
    assert '    stagedemails }o--|| users : "userId"' in text
    assert '    auditlogs }o--o| mailboxes : "mailboxId"' in text
    # Mermaid attribute lines are `type name [PK|FK] ["comment"]`, words only.
    for line in text.splitlines():
        if line.startswith("        "):
            assert re.fullmatch(r'        [A-Za-z0-9_-]+ [A-Za-z0-9_-]+( PK| FK)?( "required")?', line), line


def test_svg_draws_every_collection_and_reference() -> None:
    d = erd.diagram(shipped())
    picture = erd.svg(d)
    assert picture.startswith("<svg") and picture.endswith("</svg>")
    assert picture.count('class="entity"') == len(d.entities)
    assert picture.count('class="ref"') == len(d.relations)


def test_boxes_do_not_overlap() -> None:
    boxes = erd.layout(erd.diagram(shipped()))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (a.x + a.width <= b.x or b.x + b.width <= a.x
                     or a.y + a.height <= b.y or b.y + b.height <= a.y)  # fmt: skip
            assert apart, (a.entity.name, b.entity.name)


def test_markdown_holds_the_diagram_and_a_table_per_collection() -> None:
    spec = shipped()
    text = erd.markdown(spec)
    assert "```mermaid\nerDiagram\n" in text
    for c in spec.collections:
        assert f"\n## {c.name}" in text
    assert erd.markdown(spec) == text  # deterministic: `docs --check` relies on it


def test_boxes_are_wide_enough_for_their_longest_label() -> None:
    boxes = erd.layout(erd.diagram(shipped()))
    longest = max(len(label) for b in boxes for label in erd._labels(b.entity))
    assert longest > 30  # `metadata.automatedByRule -> rules` and the like
    assert all(b.width >= longest * erd.CHAR_WIDTH for b in boxes)

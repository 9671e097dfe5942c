"""Priority levels: the weighted read order, the sending labels, and the per-task default in the spec."""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.jobs import labels
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.priority import ReadOrder
from bootstrap.layout.keys import QueueKeys, entry_ref
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"


def test_every_level_leads_some_reads_and_higher_levels_lead_more() -> None:
    order = ReadOrder()
    reads = [order.next() for _ in range(70)]
    assert Counter(read[0] for read in reads) == {"high": 40, "normal": 20, "low": 10}
    # Whoever leads, the others follow from the highest down: an idle level gives its turn away.
    assert {read[1:] for read in reads if read[0] == "low"} == {("high", "normal")}
    assert {read[1:] for read in reads if read[0] == "normal"} == {("high", "low")}
    assert {read[1:] for read in reads if read[0] == "high"} == {("normal", "low")}
    # Low leads one read in every seven: never more than six reads pass without its turn.
    lows = [i for i, read in enumerate(reads) if read[0] == "low"]
    assert max(b - a for a, b in itertools.pairwise(lows)) == 7 and lows[0] < 7


def test_entry_references_name_the_stream_of_their_level() -> None:
    keys = QueueKeys("p", "q")
    assert entry_ref("normal", "1-0") == "1-0"  # as before priorities existed
    assert keys.locate(entry_ref("high", "1-0")) == ("p:queue:{q}:jobs:high", "1-0")
    assert keys.locate("1-0") == ("p:queue:{q}:jobs", "1-0")
    grouped = keys.by_stream(["1-0", "low/1-0", "2-0"])
    assert grouped == {"p:queue:{q}:jobs": ["1-0", "2-0"], "p:queue:{q}:jobs:low": ["1-0"]}


@pytest.mark.parametrize(
    ("sent", "placement"),
    [({}, labels.Placement()),
     ({"delay": "30", "priority": "high", "dedupe": "True"}, labels.Placement(30.0, "high", True)),
     ({"delay": 1.5, "dedupe": False}, labels.Placement(1.5, "normal", False))],
)  # fmt: skip
def test_placement_reads_the_sending_labels_as_taskiq_sends_them(sent: dict[str, object], placement: object) -> None:
    assert labels.placement(sent) == placement


def config_with(tmp_path: Path, priority: str) -> Path:
    """The shipped config with run-delta-sync declared at `priority`."""
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    queues = config / "queues.yaml"
    declared = f"run-delta-sync: {{timeout: 10m, priority: {priority}}}"
    queues.write_text(queues.read_text().replace("run-delta-sync: {timeout: 10m}", declared))
    return config


def test_a_task_declares_its_priority_and_the_contract_keeps_it(tmp_path: Path) -> None:
    config = config_with(tmp_path, "high")
    runtime = Runtime.from_spec(load_spec(config, {}))
    assert runtime.queue("delta-sync").task("run-delta-sync").priority == "high"
    assert runtime.queue("token-refresh").task("refresh-tokens").priority == "normal"  # the default
    assert Runtime.from_literal(runtime.to_literal()) == runtime


def test_an_unknown_priority_is_a_finding_with_its_position(tmp_path: Path) -> None:
    config = config_with(tmp_path, "urgent")
    with pytest.raises(ConfigError) as caught:
        load_spec(config, {})
    [finding] = [str(f) for f in caught.value.findings]
    assert "queues.yaml:21:48: queues.delta-sync.tasks.run-delta-sync.priority: 'urgent' is not allowed" in finding

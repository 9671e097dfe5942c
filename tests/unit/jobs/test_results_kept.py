"""`results.kept`: what a completed record holds of a return value, and the size cap (pure)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.jobs.results import MAX_BYTES, kept
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"


def test_a_value_up_to_the_cap_is_kept_and_a_larger_one_is_dropped_with_its_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = "x" * 98  # 100 bytes as JSON, with its quotes
    assert len(json.dumps(value)) == 100
    assert kept(value, 100, "j-1") == {"result": value}
    with caplog.at_level(logging.WARNING, "bootstrap.jobs.results"):
        fields = kept(value + "y", 100, "j-2")
    assert fields == {
        "result": None,
        "result_error": "not kept: the return value is 101 bytes as JSON, more than the queue's "
        "results.max_bytes (100): not kept",
        "result_bytes": 101,
    }
    assert [r.getMessage() for r in caplog.records] == [
        "job j-2: its return value was 101 bytes as JSON, more than the queue's results.max_bytes (100): not kept"
    ]


def test_the_size_is_of_the_json_in_bytes_and_the_default_is_64_kib() -> None:
    assert MAX_BYTES == 65536
    assert kept("é" * 10, 62) == {"result": "é" * 10}  # é is \u00e9 in JSON: 10 x 6 + 2 quotes = 62 bytes
    assert kept("é" * 10, 61)["result_bytes"] == 62
    assert kept(None, 1) == {"result": None}
    assert "not JSON" in kept({1, 2}, 10**6)["result_error"]


def queues_with(tmp_path: Path, old: str, new: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    path = config / "queues.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return config


def test_max_bytes_is_read_from_defaults_and_queues(tmp_path: Path) -> None:
    config = queues_with(
        tmp_path,
        "  max_deliveries: 3 ",
        "  results: {max_bytes: 1000}\n  max_deliveries: 3 ",
    )
    tasks = "    tasks:\n      run-delta-sync"
    text = (config / "queues.yaml").read_text()
    (config / "queues.yaml").write_text(text.replace(tasks, f"    results: {{max_bytes: 10}}\n{tasks}"))
    caps = {q.name: q.result_max_bytes for q in load_spec(config, {}).queues}
    assert caps["delta-sync"] == 10 and caps["token-refresh"] == 1000
    assert {q.result_max_bytes for q in load_spec(SHIPPED, {}).queues} == {MAX_BYTES}


def test_a_cap_out_of_range_is_refused_with_its_position(tmp_path: Path) -> None:
    config = queues_with(tmp_path, "  max_deliveries: 3 ", "  results: {max_bytes: 0}\n  max_deliveries: 3 ")
    with pytest.raises(ConfigError) as caught:
        load_spec(config, {})
    (finding,) = caught.value.findings
    line = (config / "queues.yaml").read_text().splitlines().index("  results: {max_bytes: 0}") + 1
    assert str(finding).startswith(f"{config / 'queues.yaml'}:{line}:")
    assert "defaults.results.max_bytes" in str(finding)


def test_a_number_or_bool_over_a_small_cap_is_not_kept() -> None:
    # The fast path for plain values must not skip the cap: 6 bytes of JSON over a cap of 5.
    assert kept(123456, 5)["result_bytes"] == 6
    assert kept(12345, 5) == {"result": 12345}
    assert kept(-(2**63), 19)["result_bytes"] == 20  # the longest 64-bit int
    assert kept(-(2**63), 20) == {"result": -(2**63)}
    assert kept(False, 4)["result_bytes"] == 5
    assert kept(True, 4) == {"result": True}
    assert kept(None, 1) == {"result": None}  # nothing returned: never an error


def test_a_str_beyond_the_basic_plane_is_measured_as_its_json_is() -> None:
    # Each emoji is one character and 12 bytes of JSON (a \ud83d\ude00 surrogate pair): the fast
    # path's bound of 6 bytes a character kept strings twice the cap.
    value = "\U0001f600" * 10
    assert len(json.dumps(value)) == 122
    assert kept(value, 122) == {"result": value}
    assert kept(value, 121)["result_bytes"] == 122
    assert kept(value, 64)["result_bytes"] == 122

"""The SVG charts: one bar per bucket sized by its counts, one tick per firing."""

from __future__ import annotations

import re

from bootstrap.dashboard.charts import throughput_svg, timeline_svg
from bootstrap.dashboard.data import Throughput


def test_throughput_bars_scale_to_the_busiest_bucket() -> None:
    t = Throughput(0.0, 300.0, (0, 10, 5), (0, 0, 5))
    svg = throughput_svg(t, width=90, height=50)
    heights = [float(h) for h in re.findall(r'class="completed"[^>]* height="([0-9.]+)"', svg)]
    failed = [float(h) for h in re.findall(r'class="failed"[^>]* height="([0-9.]+)"', svg)]
    assert heights == [0.0, 48.0, 24.0] and failed == [0.0, 0.0, 24.0]
    assert "10 completed, 0 failed" in svg


def test_timeline_has_a_tick_per_slot_and_escapes_names() -> None:
    svg = timeline_svg([("a<b", (3600.0, 7200.0)), ("c", ())], start=0.0)
    assert svg.count("<rect") == 2
    assert 'data-schedule="a&lt;b" data-count="2"' in svg and "a<b" not in svg

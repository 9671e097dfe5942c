"""Small server-rendered SVG charts: a queue's throughput over the last hour and the schedules'
24-hour timeline. Pure: values in, markup out (no script, nothing fetched)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from bootstrap.dashboard.data import Throughput


def throughput_svg(t: Throughput, width: int = 240, height: int = 48) -> str:
    """Stacked bars per bucket: completed (green) under failed (red); a title on each bar."""
    buckets = len(t.completed)
    top = max((c + f for c, f in zip(t.completed, t.failed, strict=True)), default=0) or 1
    bar = width / max(1, buckets)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="jobs finished per {t.width / 60:g} minutes, last hour">',
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#bbb"/>',
    ]
    for i, (done, failed) in enumerate(zip(t.completed, t.failed, strict=True)):
        x = i * bar + 1
        done_h = (height - 2) * done / top
        failed_h = (height - 2) * failed / top
        start = datetime.fromtimestamp(t.start + i * t.width, UTC).strftime("%H:%M")
        parts.append(f"<g><title>{start} UTC: {done} completed, {failed} failed</title>")
        parts.append(f'<rect class="completed" x="{x:.1f}" y="{height - 1 - done_h:.1f}" width="{bar - 2:.1f}" '
                     f'height="{done_h:.1f}" fill="#3a3"/>')
        parts.append(f'<rect class="failed" x="{x:.1f}" y="{height - 1 - done_h - failed_h:.1f}" '
                     f'width="{bar - 2:.1f}" height="{failed_h:.1f}" fill="#c33"/></g>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(rows: list[tuple[str, tuple[float, ...]]], start: float, hours: int = 24, width: int = 720) -> str:
    """One lane per schedule over `hours` from `start`: a tick per firing, hour marks on top."""
    lane, label_w, head = 22, 190, 18
    span = hours * 3600.0
    plot = width - label_w - 24  # room for the last hour's label
    height = head + lane * len(rows) + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="when each schedule fires in the next {hours} hours">'
    ]
    for h in range(0, hours + 1, 3):
        x = label_w + plot * h * 3600 / span
        stamp = datetime.fromtimestamp(start + h * 3600, UTC).strftime("%H:%M")
        parts.append(f'<line x1="{x:.1f}" y1="{head - 4}" x2="{x:.1f}" y2="{height}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="11" font-size="10" text-anchor="middle" fill="#555">{stamp}</text>')
    for i, (name, slots) in enumerate(rows):
        y = head + i * lane
        parts.append(f'<text x="4" y="{y + 15}" font-size="12" fill="#222">{escape(name)}</text>')
        parts.append(f'<line x1="{label_w}" y1="{y + 11}" x2="{label_w + plot}" y2="{y + 11}" stroke="#eee"/>')
        parts.append(f'<g class="slots" data-schedule="{escape(name)}" data-count="{len(slots)}">')
        for slot in slots:
            x = label_w + plot * (slot - start) / span
            when = datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%d %H:%M")
            parts.append(f'<rect x="{x - 1:.1f}" y="{y + 3}" width="2" height="16" fill="#36c">'
                         f"<title>{escape(name)}: {when} UTC</title></rect>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)

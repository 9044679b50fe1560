"""Charts drawn on the server as SVG: bars and weekly lines whose every bar or point is a link.

No chart library and no script: the page stays readable without JavaScript, and the CSP allows it
(presentation attributes and classes from static CSS, no inline style). All text goes through
`format_html`, so a code or entity name is shown, never run.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def _html(template: str, *args, **kwargs) -> SafeString:
    """format_html with coordinates rounded (it escapes arguments to text before formatting them)."""
    return format_html(template, *map(_coord, args), **{k: _coord(v) for k, v in kwargs.items()})


def _coord(value):
    return f"{value:.1f}" if isinstance(value, float) else value


@dataclass(frozen=True)
class Mark:
    """One bar or point: what it is called, its value (None: nothing to show), where it leads."""

    label: str
    value: Decimal | int | None
    href: str
    title: str
    text: str = ""  # the value as shown (units, currency); the number itself when empty


def _num(value) -> float:
    return float(value or 0)


def bars(
    marks: list[Mark], *, testid: str, label_width: int = 150, width: int = 460, bar_height: int = 22
) -> SafeString:
    """Horizontal bars, one per row, scaled to the largest. Only ever one unit (one currency) per chart."""
    if not marks:
        return _html('<p class="muted small" data-testid="{}-empty">Nothing in this period.</p>', testid)
    top = max(_num(m.value) for m in marks) or 1.0
    plot = width - label_width - 110
    rows = []
    for i, m in enumerate(marks):
        y = i * (bar_height + 6)
        w = max(1.0, plot * _num(m.value) / top) if m.value else 0
        rows.append(
            _html(
                '<a href="{href}" data-testid="{testid}-bar" data-label="{label}" data-value="{value}">'
                "<title>{title}</title>"
                '<rect class="c-hit" x="0" y="{y}" width="{width}" height="{h}"></rect>'
                '<text class="c-label" x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
                '<rect class="c-bar" x="{bx}" y="{y}" width="{w}" height="{h}" rx="2"></rect>'
                '<text class="c-value" x="{vx}" y="{ty}">{text}</text></a>',
                href=m.href,
                testid=testid,
                label=m.label,
                value="" if m.value is None else m.value,
                title=m.title,
                y=y,
                width=width,
                h=bar_height,
                lx=label_width - 8,
                ty=y + bar_height * 0.7,
                bx=label_width,
                w=w,
                vx=label_width + w + 6,
                text=m.text or ("—" if m.value is None else m.value),
            )
        )
    height = len(marks) * (bar_height + 6)
    return _html(
        '<svg class="chart bars" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">{rows}</svg>',
        w=width,
        h=height,
        t=testid,
        rows=mark_safe("".join(rows)),
    )


def columns(marks: list[Mark], *, testid: str, width: int = 460, height: int = 180) -> SafeString:
    """Vertical bars (the backlog's age buckets), labels under them."""
    top = max((_num(m.value) for m in marks), default=0) or 1.0
    n = max(len(marks), 1)
    slot = width / n
    plot = height - 40
    cols = []
    for i, m in enumerate(marks):
        h = plot * _num(m.value) / top
        x = i * slot + slot * 0.15
        cols.append(
            _html(
                '<a href="{href}" data-testid="{testid}-bar" data-label="{label}" data-value="{value}">'
                "<title>{title}</title>"
                '<rect class="c-hit" x="{sx}" y="0" width="{sw}" height="{full}"></rect>'
                '<rect class="c-bar" x="{x}" y="{y}" width="{w}" height="{h}" rx="2"></rect>'
                '<text class="c-value" x="{cx}" y="{vy}" text-anchor="middle">{text}</text>'
                '<text class="c-label" x="{cx}" y="{ly}" text-anchor="middle">{label}</text></a>',
                href=m.href,
                testid=testid,
                label=m.label,
                value="" if m.value is None else m.value,
                title=m.title,
                sx=i * slot,
                sw=slot,
                full=height,
                x=x,
                y=plot + 16 - h,
                w=slot * 0.7,
                h=h,
                cx=i * slot + slot / 2,
                vy=plot + 12 - h,
                ly=height - 6,
                text=m.text or ("—" if m.value is None else m.value),
            )
        )
    return _html(
        '<svg class="chart columns" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">{c}</svg>',
        w=width,
        h=height,
        t=testid,
        c=mark_safe("".join(cols)),
    )


def trend(marks: list[Mark], *, testid: str, width: int = 460, height: int = 120) -> SafeString:
    """A weekly line: one point per week (a gap where a week has no value), each point a link."""
    values = [_num(m.value) for m in marks if m.value is not None]
    top = max(values, default=0) or 1.0
    n = max(len(marks) - 1, 1)
    pad, plot_h = 10, height - 30
    points = []
    for i, m in enumerate(marks):
        x = pad + (width - 2 * pad) * i / n
        y = None if m.value is None else pad + plot_h - plot_h * _num(m.value) / top
        points.append((x, y, m))
    segments, current = [], []
    for x, y, _ in points:
        if y is None:
            if len(current) > 1:
                segments.append(current)
            current = []
        else:
            current.append(f"{x},{y}")
    if len(current) > 1:
        segments.append(current)
    lines = format_html_join("", '<polyline class="c-line" points="{}"></polyline>', ((" ".join(s),) for s in segments))
    dots = format_html_join(
        "",
        '<a href="{}" data-testid="{}-point" data-label="{}" data-value="{}"><title>{}</title>'
        '<rect class="c-hit" x="{}" y="0" width="{}" height="{}"></rect>{}</a>',
        (
            (
                m.href,
                testid,
                m.label,
                "" if m.value is None else m.value,
                m.title,
                _coord(x - (width - 2 * pad) / n / 2),
                _coord((width - 2 * pad) / n),
                height,
                _html('<circle class="c-dot" cx="{}" cy="{}" r="3.5"></circle>', x, y) if y is not None else "",
            )
            for x, y, m in points
        ),
    )
    first, last = (marks[0].label, marks[-1].label) if marks else ("", "")
    peak = max((m for m in marks if m.value is not None), key=lambda m: _num(m.value), default=None)
    return _html(
        '<svg class="chart trend" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">'
        '{lines}{dots}<text class="c-axis" x="{pad}" y="{ay}">{first}</text><text class="c-axis" x="{pad}" y="9" '
        ">{peak}</text>"
        '<text class="c-axis" x="{ex}" y="{ay}" text-anchor="end">{last}</text></svg>',
        w=width,
        h=height,
        t=testid,
        lines=lines,
        dots=dots,
        pad=pad,
        ay=height - 4,
        ex=width - pad,
        first=first,
        last=last,
        peak=f"highest {peak.text or peak.value}" if peak is not None else "",
    )

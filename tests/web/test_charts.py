"""Server-drawn SVG charts: every bar and point a link, names shown as text, empty weeks left empty."""

import re
from decimal import Decimal

from workbench.web.charts import Mark, bars, columns, trend

HOSTILE = '<script>alert(1)</script>"'


def test_names_are_escaped_and_each_bar_is_a_link():
    svg = str(bars([Mark(HOSTILE, Decimal("12.5"), "/queue/?code=X&status=resolved", HOSTILE)], testid="t"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert '<a href="/queue/?code=X&amp;status=resolved" data-testid="t-bar"' in svg


def test_bars_scale_to_the_largest_value():
    svg = str(columns([Mark("a", 10, "/a", ""), Mark("b", 5, "/b", ""), Mark("c", 0, "/c", "")], testid="t"))
    heights = [float(h) for h in re.findall(r'class="c-bar" [^>]*height="([\d.]+)"', svg)]
    assert heights == [140.0, 70.0, 0.0]


def test_a_week_without_a_value_breaks_the_line_but_keeps_its_link():
    marks = [Mark(f"w{i}", v, f"/q?w={i}", "") for i, v in enumerate([1, 2, None, 3, 4])]
    svg = str(trend(marks, testid="t"))
    assert svg.count("<polyline") == 2 and svg.count('data-testid="t-point"') == 5
    assert svg.count("<circle") == 4
    assert "highest 4" in svg


def test_no_rows_says_so():
    assert "Nothing in this period" in str(bars([], testid="t"))

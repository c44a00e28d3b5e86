"""The report's charts as plain geometry: rectangles, lines, text and polylines in numbers.

Each function lays one chart out and returns a :class:`Figure`: its size, an accessible
label, a list of shapes and a legend. The template ``charts.html.j2`` draws any Figure
as inline SVG, with autoescaping on, so a label taken from the predicate (a column named
``<script>``) reaches the page as text: nothing here writes markup. Coordinates are in
pixels of the chart's own box and rounded to 0.1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .formatting import epsilon as _epsilon

__all__ = [
    "ATTACK_COLOURS", "REAL_COLOUR", "STEP_COLOURS", "SYNTHETIC_COLOUR", "Circle", "Figure", "Line", "Polyline",
    "Rect", "Text", "budget_bar", "epsilon_bar", "estimate_scale", "heatmap", "nice_ceiling", "paired_bars",
    "roc_curves", "value_bars",
]

#: The two tables in every comparison (blue and orange stay apart for colour-blind readers).
REAL_COLOUR = "#1f4e79"
SYNTHETIC_COLOUR = "#e07b39"
ATTACK_COLOURS = ("#1f4e79", "#c0392b", "#2e7d32", "#6a1b9a", "#8d6e00")
STEP_COLOURS = ("#1f4e79", "#e07b39", "#2e7d32", "#6a1b9a", "#c0392b", "#00838f", "#8d6e00", "#5d4037")
PASS_COLOUR = "#1a7f37"
FLAG_COLOUR = "#b42318"
GRID_COLOUR = "#d0d7de"
MUTED_COLOUR = "#57606a"
#: A heatmap cell without a value.
BLANK_COLOUR = "#c9d1d9"
#: Longest label a bar chart writes out; the full text is in its tooltip.
LABEL_CHARS = 24


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    stroke: str | None = None
    title: str | None = None
    kind: str = "rect"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = MUTED_COLOUR
    width: float = 1.0
    dash: str | None = None
    title: str | None = None
    kind: str = "line"


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 10.0
    anchor: str = "start"
    tone: str | None = None  # "muted" (grey) or "white"; set by CSS class, which outranks a fill attribute
    italic: bool = False
    halo: bool = False
    rotate: float | None = None
    title: str | None = None
    kind: str = "text"


@dataclass(frozen=True)
class Polyline:
    points: str
    stroke: str
    width: float = 2.0
    title: str | None = None
    kind: str = "polyline"


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float
    fill: str
    title: str | None = None
    kind: str = "circle"


@dataclass(frozen=True)
class Figure:
    width: float
    height: float
    label: str
    shapes: list = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)


def _r(value: float) -> float:
    return round(float(value), 1)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^m at least ``value``."""
    if not value > 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    return next(m * 10.0 ** exponent for m in (1, 2, 2.5, 5, 10) if m * 10.0 ** exponent >= value * (1 - 1e-12))


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _anchor(x: float, width: float) -> str:
    """Text anchor that keeps a label inside the drawing near either edge."""
    if x < 60:
        return "start"
    if x > width - 60:
        return "end"
    return "middle"


def _axis(left: float, span: float, top: float, *, y: float, ticks: int = 5, percent: bool = False) -> list:
    shapes: list = [Line(left, y, _r(left + span), y)]
    for i in range(ticks + 1):
        value = top * i / ticks
        x = _r(left + span * i / ticks)
        label = f"{100 * value:.0f}%" if percent else f"{value:.3g}"
        shapes += [Line(x, y, x, y + 4), Text(x, y + 15, label, anchor=_anchor(x - left, span))]
    return shapes


# --------------------------------------------------------------------------- charts


def budget_bar(steps: Sequence[tuple[str, float]], target: float | None) -> Figure | None:
    """How the cumulative ε filled up: one segment per step (its increase), the target as a black line."""
    values = [value for _, value in steps]
    if not steps or any(value < 0 for value in values):
        return None
    top = max([*values, target or 0.0])
    if not top > 0:
        return None
    width, left, span = 720.0, 10.0, 700.0
    scale = span / top
    shapes: list = []
    legend = []
    previous = 0.0
    for i, (name, value) in enumerate(steps):
        colour = STEP_COLOURS[i % len(STEP_COLOURS)]
        increase = max(value - previous, 0.0)
        shapes.append(Rect(_r(left + previous * scale), 6, _r(max(increase * scale, 0.5)), 22, colour,
                           title=f"{name}: cumulative ε {_epsilon(value)}"))
        legend.append((f"{name} (to {_epsilon(value)})", colour))
        previous = max(previous, value)
    if target is not None:
        x = _r(left + target * scale)
        shapes.append(Line(x, 2, x, 32, stroke="#000", width=2, title=f"target ε {target:g}"))
    shapes += _axis(left, span, top, y=32)
    return Figure(width, 52, "Cumulative privacy budget per step", shapes, legend)


def value_bars(rows: Sequence[tuple[str, float | None]], *, label: str, top: float | None = None,
               note_missing: str = "not reported") -> Figure | None:
    """One horizontal bar per row, its value written at its end (e.g. each column's TVD)."""
    if not rows:
        return None
    shown = [value for _, value in rows if value is not None]
    top = top or nice_ceiling(max(shown, default=0.0) or 1.0)
    label_width, left, width, row_height, top_margin = 160.0, 166.0, 560.0, 18.0, 16.0
    span = width - left - 50
    height = top_margin + row_height * len(rows) + 22
    shapes: list = []
    for i in range(5):
        x = _r(left + span * i / 4)
        shapes.append(Line(x, top_margin - 2, x, top_margin + row_height * len(rows), stroke=GRID_COLOUR))
    for i, (name, value) in enumerate(rows):
        y = top_margin + i * row_height
        shapes.append(Text(label_width, _r(y + 12.5), _short(name), size=11, anchor="end", title=name))
        if value is None:
            shapes.append(Text(left + 4, _r(y + 12.5), note_missing, size=10, italic=True, tone="muted"))
            continue
        length = max(span * min(value / top, 1.0), 1.0)
        shapes.append(Rect(left, _r(y + 3), _r(length), 12, REAL_COLOUR, title=f"{name}: {value:.3f}"))
        shapes.append(Text(_r(left + length + 4), _r(y + 12.5), f"{value:.3f}", size=10))
    shapes += _axis(left, span, top, y=_r(top_margin + row_height * len(rows)), ticks=4)
    return Figure(width, _r(height), label, shapes)


def paired_bars(rows: Sequence[tuple[str, float | None, float | None, bool]], *, label: str) -> Figure | None:
    """Real (upper, blue) and synthetic (lower, orange) share of each category or range.

    ``rows`` are ``(label, real share, synthetic share, special)``; special rows ("other
    values", "missing") are written in grey italics.
    """
    if not rows:
        return None
    shares = [v for _, real, synthetic, _ in rows for v in (real, synthetic) if v is not None]
    top = nice_ceiling(max(shares, default=0.0) or 1.0)
    label_width, left, width, row_height, top_margin = 150.0, 154.0, 370.0, 15.0, 14.0
    span = width - left - 8
    height = top_margin + row_height * len(rows) + 4
    shapes: list = []
    for tick, anchor in ((0.0, "middle"), (top / 2, "middle"), (top, "end")):
        x = _r(left + span * tick / top)
        shapes.append(Line(x, top_margin - 2, x, _r(height - 2), stroke=GRID_COLOUR))
        shapes.append(Text(x, top_margin - 4, f"{100 * tick:.{0 if top >= 0.1 else 1}f}%", size=9, anchor=anchor))
    for i, (name, real, synthetic, special) in enumerate(rows):
        y = top_margin + i * row_height
        tip = f"{name}: real {_share(real)}, synthetic {_share(synthetic)}"
        shapes.append(Text(label_width, _r(y + 10.5), _short(name), size=10, anchor="end", italic=special,
                           tone="muted" if special else None, title=tip))
        for offset, share, colour, who in ((1, real, REAL_COLOUR, "real"), (7, synthetic, SYNTHETIC_COLOUR,
                                                                              "synthetic")):
            if share is not None and share > 0:
                length = max(span * min(share / top, 1.0), 1.0)
                shapes.append(Rect(left, _r(y + offset), _r(length), 6, colour, title=f"{name}: {who} {_share(share)}"))
    return Figure(width, _r(height), label, shapes)


def _share(value: float | None) -> str:
    return "not reported" if value is None else f"{100 * value:.2f}%"


def heatmap(columns: Sequence[str], values: Mapping[tuple[str, str], float], *, label: str,
            blank: str = "not measured") -> Figure | None:
    """The lower triangle of a column × column grid, white (0) to dark red (the top of the scale).

    ``values`` holds a number per pair ``(a, b)`` with ``a`` before ``b`` in ``columns``;
    a pair without one is grey, its tooltip says ``blank``.
    """
    n = len(columns)
    if n < 2 or not values:
        return None
    top = max(0.1, math.ceil(max(values.values()) * 10) / 10)
    cell = max(10.0, min(30.0, 600.0 / (n - 1)))
    label_width = 150.0
    grid = cell * (n - 1)
    width, height = label_width + grid + 90, grid + 130
    shapes: list = []
    for i in range(1, n):
        y = (i - 1) * cell
        shapes.append(Text(label_width - 6, _r(y + cell / 2 + 4), _short(columns[i], 22), size=11, anchor="end",
                           title=columns[i]))
        for j in range(i):
            value = values.get((columns[j], columns[i]))
            x = label_width + j * cell
            tip = f"{columns[j]} × {columns[i]}: " + (f"{value:.3f}" if value is not None else blank)
            fill = heat(value / top) if value is not None else BLANK_COLOUR
            shapes.append(Rect(_r(x), _r(y), _r(cell), _r(cell), fill, stroke=GRID_COLOUR, title=tip))
            if value is not None and cell >= 24:
                shapes.append(Text(_r(x + cell / 2), _r(y + cell / 2 + 3.5), f"{round(value * 100)}", size=9,
                                   anchor="middle", tone="white" if value / top > 0.6 else None))
    for j in range(n - 1):
        x, y = _r(label_width + j * cell + cell / 2), _r(grid + 8)
        shapes.append(Text(x, y, _short(columns[j], 22), size=11, anchor="end", rotate=-50, title=columns[j]))
    legend_x = label_width + grid + 24
    for k in range(10):
        shapes.append(Rect(_r(legend_x), k * 12, 14, 12, heat(1 - k / 9)))
    shapes.append(Text(_r(legend_x + 18), 10, f"{top:.1f}"))
    shapes.append(Text(_r(legend_x + 18), 120, "0"))
    blanks = any(values.get((columns[j], columns[i])) is None for i in range(1, n) for j in range(i))
    return Figure(_r(width), _r(height), label, shapes, [(blank, BLANK_COLOUR)] if blanks else [])


def heat(fraction: float) -> str:
    """White (0) to dark red (1)."""
    f = min(max(fraction, 0.0), 1.0)
    r, g, b = (round(255 + (end - 255) * f) for end in (150, 20, 20))
    return f"#{r:02x}{g:02x}{b:02x}"


def roc_curves(curves: Sequence[tuple[str, Sequence[tuple[float, float]], float | None]]) -> Figure | None:
    """ROC curves ``(name, [(fpr, tpr), …], auroc)`` over the chance diagonal."""
    size, left, bottom, top_pad, right_pad = 300.0, 46.0, 40.0, 10.0, 12.0
    width, height = left + size + right_pad, top_pad + size + bottom
    shapes: list = []
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x, y = _r(left + tick * size), _r(top_pad + (1 - tick) * size)
        shapes += [Line(x, top_pad, x, top_pad + size, stroke="#eaeef2"),
                   Line(left, y, left + size, y, stroke="#eaeef2"),
                   Text(x, top_pad + size + 14, f"{tick:g}", anchor="middle"),
                   Text(left - 5, _r(y + 3.5), f"{tick:g}", anchor="end")]
    shapes.append(Rect(left, top_pad, size, size, "none", stroke=MUTED_COLOUR))
    shapes.append(Line(left, top_pad + size, left + size, top_pad, stroke="#8c959f", dash="5 4",
                       title="chance: an attack that guesses"))
    shapes.append(Text(left + size / 2, height - 6, "false-positive rate (non-members called members)", size=11,
                       anchor="middle"))
    shapes.append(Text(12, top_pad + size / 2, "true-positive rate (members found)", size=11, anchor="middle",
                       rotate=-90))
    legend = [("chance", "#8c959f")]
    for i, (name, points, auroc) in enumerate(curves):
        if len(points) < 2:
            continue
        colour = ATTACK_COLOURS[i % len(ATTACK_COLOURS)]
        path = " ".join(f"{_r(left + min(max(f, 0), 1) * size)},{_r(top_pad + (1 - min(max(t, 0), 1)) * size)}"
                        for f, t in points)
        auc = "not reported" if auroc is None else f"{auroc:.3f}"
        shapes.append(Polyline(path, colour, title=f"{name}: AUROC {auc}"))
        legend.append((f"{name} (AUROC {auc})", colour))
    if len(legend) == 1:
        return None
    return Figure(width, height, "ROC curves of the membership-inference attacks", shapes, legend)


def estimate_scale(value: float, std: float | None, *, label: str, references: Sequence[tuple[float, str]] = (),
                   percent: bool = True) -> Figure:
    """A noisy estimate of a rate on the scale 0 to 1: a dot, a bar of ± 2 noise standard deviations, references.

    ``references`` are ``(value, what)`` drawn as dashed lines with their label (chance,
    a majority-class baseline). The error bar is clipped to the scale and says so.
    """
    width, left, span = 720.0, 14.0, 690.0

    def x(v: float) -> float:
        return _r(left + span * min(max(v, 0.0), 1.0))

    shapes: list = [Rect(left, 26, span, 14, "#f1f3f5")]
    for where, what in references:
        shapes.append(Line(x(where), 16, x(where), 50, stroke=MUTED_COLOUR, width=1.5, dash="4 3",
                           title=f"{what}: {where:.3f}"))
        shapes.append(Text(x(where), 11, f"{what} = {where:.3f}", size=11, anchor=_anchor(x(where) - left, span),
                           tone="muted", halo=True))
    if std is not None:
        a, b = x(value - 2 * std), x(value + 2 * std)
        shapes += [Line(a, 33, b, 33, stroke="#000", width=2), Line(a, 27, a, 39, stroke="#000", width=2),
                   Line(b, 27, b, 39, stroke="#000", width=2)]
    tip = f"{value:.3f}" + ("" if std is None else f" ± {2 * std:.3f} (2 noise std)")
    shapes.append(Circle(x(value), 33, 6, REAL_COLOUR, title=tip))
    shapes += _axis(left, span, 1.0, y=56, percent=percent)
    return Figure(width, 76, label, shapes)


def epsilon_bar(bound: float, claimed: float | None, certifiable: float | None) -> Figure:
    """The ε an attack proves, beside the claimed ε (black) and the most the audit could show (dashed)."""
    marks = [v for v in (bound, claimed, certifiable) if v is not None]
    top = nice_ceiling(max(marks) * 1.1 or 1.0)
    width, left, span = 720.0, 10.0, 690.0

    def x(value: float) -> float:
        return _r(left + span * min(max(value, 0.0), top) / top)

    violation = claimed is not None and bound > claimed
    colour = FLAG_COLOUR if violation else PASS_COLOUR
    shapes: list = [Rect(left, 34, _r(max(x(bound) - left, 2)), 16, colour, title=f"lower bound {bound:.2f}")]
    labels: list = []
    words = f"proved by the attack: ε ≥ {bound:.2f}"
    if x(bound) > width / 2:  # a long bar holds its own label
        labels.append(Text(_r(x(bound) - 6), 46, words, size=11, anchor="end", tone="white"))
    else:  # after the bar, and past any mark line it would cross
        start, extent = x(bound) + 6, len(words) * 6.2
        for mark in sorted(x(v) for v in (claimed, certifiable) if v is not None):
            if start - 4 <= mark <= start + extent:
                start = mark + 6
        labels.append(Text(_r(start), 46, words, size=11, halo=True))
    if claimed is not None:
        shapes.append(Line(x(claimed), 14, x(claimed), 62, stroke="#000", width=2.5))
        labels.append(Text(x(claimed), 11, f"claimed ε = {claimed:.4g}", size=11, anchor=_anchor(x(claimed), width),
                           halo=True))
    if certifiable is not None:
        shapes.append(Line(x(certifiable), 24, x(certifiable), 62, stroke=MUTED_COLOUR, width=2, dash="5 3"))
        labels.append(Text(x(certifiable), 76, f"most this audit can show = {certifiable:.2f}", size=11,
                           anchor=_anchor(x(certifiable), width), tone="muted", halo=True))
    return Figure(width, 106, "Empirical epsilon lower bound beside the claimed epsilon",
                  shapes + labels + _axis(left, span, top, y=86))

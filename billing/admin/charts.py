"""Server-rendered SVG charts for the admin's analytics page: geometry here, markup in
templates/admin/analytics.html.

No JavaScript and no style attributes (the CSP allows neither inline): shapes carry SVG
presentation attributes (x, y, width, height, points) and CSS classes of
static/css/admin_analytics.css. Every chart is also shown as a table of its numbers.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 640
HEIGHT = 200
LEFT = 48  # room for the value axis labels
BOTTOM = 24  # room for the date labels
TOP = 8
LABEL_WIDTH = 160  # horizontal bars: room for the row labels
ROW_HEIGHT = 22


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    tooltip: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    # Line charts: "x,y x,y ..." for a <polyline>.
    points: str = ""
    line_css: str = ""
    # Legend: (css class, label).
    legend: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Series:
    label: str
    css: str
    values: Sequence[float]


def _scale_max(values: Sequence[float]) -> float:
    top = max(values, default=0)
    return top if top > 0 else 1.0


def _axis(top: float, plot_height: float, fmt: str) -> list[Text]:
    """The value axis: 0 and the maximum."""
    return [
        Text(x=LEFT - 4, y=TOP + plot_height, text=fmt.format(0), anchor="end"),
        Text(x=LEFT - 4, y=TOP + 10, text=fmt.format(top), anchor="end"),
    ]


def _date_labels(labels: Sequence[str], step_width: float, plot_height: float) -> list[Text]:
    """Some of the x labels (at most ~8), so they never overlap."""
    every = max(1, len(labels) // 8 + (1 if len(labels) % 8 else 0))
    return [
        Text(x=LEFT + step_width * (n + 0.5), y=TOP + plot_height + 16, text=label)
        for n, label in enumerate(labels)
        if n % every == 0
    ]


def stacked_columns(
    *, title: str, labels: Sequence[str], series: Sequence[Series], value_format: str = "{:.0f}"
) -> Chart:
    """One column per label (e.g. a day), the series stacked in it."""
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - TOP - BOTTOM
    totals = [sum(s.values[n] for s in series) for n in range(len(labels))]
    top = _scale_max(totals)
    step = plot_width / max(1, len(labels))
    gap = min(2.0, step * 0.2)
    rects = []
    for n, label in enumerate(labels):
        base = TOP + plot_height
        for s in series:
            value = s.values[n]
            if value <= 0:
                continue
            height = plot_height * value / top
            base -= height
            rects.append(
                Rect(
                    x=round(LEFT + step * n + gap / 2, 2),
                    y=round(base, 2),
                    width=round(max(step - gap, 0.5), 2),
                    height=round(height, 2),
                    css=s.css,
                    tooltip=f"{label}: {s.label} {value_format.format(value)}",
                )
            )
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        rects=rects,
        texts=_axis(top, plot_height, value_format) + _date_labels(labels, step, plot_height),
        legend=[(s.css, s.label) for s in series],
    )


def line(
    *, title: str, labels: Sequence[str], values: Sequence[float], css: str, value_format: str
) -> Chart:
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - TOP - BOTTOM
    top = _scale_max(values)
    step = plot_width / max(1, len(labels))
    points = " ".join(
        f"{LEFT + step * (n + 0.5):.2f},{TOP + plot_height - plot_height * value / top:.2f}"
        for n, value in enumerate(values)
    )
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        texts=_axis(top, plot_height, value_format) + _date_labels(labels, step, plot_height),
        points=points,
        line_css=css,
    )


@dataclass(frozen=True)
class BarRow:
    label: str
    value: float
    text: str  # what the bar says, e.g. "3" or "72 %"
    css: str = "chart-bar-primary"


def horizontal_bars(*, title: str, rows: Sequence[BarRow], maximum: float | None = None) -> Chart:
    """One bar per row (a step, a node, a channel); `maximum` fixes the scale (e.g. 1 = 100 %)."""
    top = maximum if maximum is not None else _scale_max([r.value for r in rows])
    plot_width = WIDTH - LABEL_WIDTH - 56
    height = TOP * 2 + ROW_HEIGHT * max(1, len(rows))
    rects, texts = [], []
    for n, row in enumerate(rows):
        y = TOP + ROW_HEIGHT * n
        width = plot_width * min(row.value, top) / top if top else 0
        rects.append(
            Rect(
                x=LABEL_WIDTH,
                y=y + 3,
                width=round(max(width, 0), 2),
                height=ROW_HEIGHT - 6,
                css=row.css,
                tooltip=f"{row.label}: {row.text}",
            )
        )
        texts.append(Text(x=LABEL_WIDTH - 6, y=y + ROW_HEIGHT - 7, text=row.label, anchor="end"))
        texts.append(
            Text(x=LABEL_WIDTH + width + 6, y=y + ROW_HEIGHT - 7, text=row.text, anchor="start")
        )
    return Chart(title=title, width=WIDTH, height=height, rects=rects, texts=texts)

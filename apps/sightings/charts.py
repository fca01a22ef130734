"""Bar charts as plain SVG geometry for the dashboard templates: no chart library, no
JavaScript, nothing fetched from the internet."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    maximum: int
    label_every: int  # write every n-th label under the bars

    @property
    def baseline(self) -> int:
        return self.height - 20


def bar_chart(title: str, items: list[tuple[str, int]], width: int = 640, height: int = 180) -> BarChart:
    plot_height = height - 40  # room for the labels below and the value above
    maximum = max((value for _, value in items), default=0)
    slot = width / max(len(items), 1)
    bars = []
    bar_width = min(slot * 0.8, 60)  # a few categories give slim bars, not slabs
    for index, (label, value) in enumerate(items):
        bar_height = plot_height * value / maximum if maximum else 0
        bars.append(
            Bar(
                label=label,
                value=value,
                x=round(index * slot + (slot - bar_width) / 2, 1),
                y=round(height - 20 - bar_height, 1),
                width=round(bar_width, 1),
                height=round(bar_height, 1),
            )
        )
    return BarChart(
        title=title, bars=bars, width=width, height=height, maximum=maximum, label_every=max(1, len(items) // 12)
    )

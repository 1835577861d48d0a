"""Small server-rendered SVG bar charts: no JavaScript, no external assets.

Colours come from CSS classes (``ddt-bar-successful``, ...) defined in the
package's admin.css with Django admin's variables, so the chart follows the
light and dark theme.
"""

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

WIDTH = 640
HEIGHT = 180
LEFT = 40  # room for the y-axis labels
BOTTOM = 22  # room for the x-axis labels
TOP = 8


@dataclass(frozen=True)
class Bucket:
    label: str
    successful: int
    failed: int


def _nice_max(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above ``value``: a round top."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= value:
                return top * step
        top *= 10


def _px(value: float) -> str:
    return f"{value:.1f}"


def bar_chart(buckets: list[Bucket], title: str, label_every: int = 1) -> SafeString:
    """Stacked bars, successful below failed, one per bucket."""
    peak = _nice_max(max((b.successful + b.failed for b in buckets), default=0))
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(buckets), 1)
    bar = max(slot * 0.7, 1)
    shapes = []
    for index, bucket in enumerate(buckets):
        x = LEFT + index * slot + (slot - bar) / 2
        base: float = HEIGHT - BOTTOM
        tip = _("%(label)s: %(successful)d successful, %(failed)d failed") % {
            "label": bucket.label,
            "successful": bucket.successful,
            "failed": bucket.failed,
        }
        for css, count in (
            ("ddt-bar-successful", bucket.successful),
            ("ddt-bar-failed", bucket.failed),
        ):
            if not count:
                continue
            height = count / peak * plot_height
            base -= height
            shapes.append(
                format_html(
                    '<rect class="{}" x="{}" y="{}" width="{}" '
                    'height="{}"><title>{}</title></rect>',
                    css,
                    _px(x),
                    _px(base),
                    _px(bar),
                    _px(height),
                    tip,
                )
            )
        if index % label_every == 0:
            shapes.append(
                format_html(
                    '<text class="ddt-axis" x="{}" y="{}" '
                    'text-anchor="middle">{}</text>',
                    _px(x + bar / 2),
                    HEIGHT - 6,
                    bucket.label,
                )
            )
    axis = format_html(
        '<line class="ddt-gridline" x1="{left}" y1="{top}" x2="{right}" y2="{top}"/>'
        '<line class="ddt-baseline" x1="{left}" y1="{base}" x2="{right}" '
        'y2="{base}"/>'
        '<text class="ddt-axis" x="{label_x}" y="{top_text}" '
        'text-anchor="end">{peak}</text>'
        '<text class="ddt-axis" x="{label_x}" y="{base}" text-anchor="end">0</text>',
        left=LEFT,
        right=WIDTH,
        top=TOP,
        base=HEIGHT - BOTTOM,
        label_x=LEFT - 6,
        top_text=TOP + 4,
        peak=peak,
    )
    return format_html(
        '<svg class="ddt-chart" role="img" viewBox="0 0 {} {}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        axis,
        format_html_join("", "{}", ((shape,) for shape in shapes)),
    )

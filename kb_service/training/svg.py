"""Weekly trend charts as server-rendered SVG (no script, no CDN): lines of shares (0-1) per ISO week."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH, HEIGHT, PAD = 640, 240, 40
COLOURS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea")


def trend_svg(title: str, weeks: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]) -> str:
    """A line chart: one line per series (values 0-1, None = no data that week), weeks along the bottom."""
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(1, len(weeks) - 1)

    def x(i: int) -> float:
        return PAD + (i * step if len(weeks) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return PAD + inner_h * (1 - v)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{PAD}" y="20" font-size="13" fill="#111">{escape(title)}</text>',
    ]
    for v in (0, 0.5, 1):
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{PAD - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#666">{int(v * 100)}%</text>')
    for i, w in enumerate(weeks):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle" fill="#666">{escape(w[-3:])}</text>'
        )
    if not weeks:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#666">暂无数据</text>')
    for n, (label, values) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points)
        lx = WIDTH - PAD - 150 * (len(series) - n)
        parts.append(f'<rect x="{lx}" y="10" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="19" fill="#333">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)

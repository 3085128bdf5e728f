"""Small SVG drawings for reports: line plots, histograms, event timelines, topologies. Pure.

Inline SVG keeps a report self-contained: it loads nothing, runs no script, and opens from a file.
"""
import math
from html import escape

from . import graphlayout

W, H = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 28, 40
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
          "#bcbd22", "#7f7f7f", "#393b79", "#ad494a")
MAX_MARKS = 300   # per lane: beyond this, marks are sampled evenly so the whole run stays visible


def _nice(value):
    """A round axis maximum at or above VALUE, made of four round steps (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 4
    raw = value / 4
    exp = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= raw:
            return 4 * step * exp
    return 40 * exp


def _fmt(v):
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _frame(title, xlabel, ylabel, xmax, ymax, body):
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    ticks = []
    for i in range(5):
        y = PAD_T + ph - ph * i / 4
        ticks.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(ymax * i / 4)}</text>')
        x = PAD_L + pw * i / 4
        ticks.append(f'<text x="{x:.1f}" y="{PAD_T + ph + 16}" text-anchor="middle">{_fmt(round(xmax * i / 4, 3))}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="plot" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<text x="{PAD_L}" y="18" class="title">{escape(title)}</text>{"".join(ticks)}'
            f'<line x1="{PAD_L}" y1="{PAD_T + ph}" x2="{W - PAD_R}" y2="{PAD_T + ph}" class="axis"/>'
            f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + ph}" class="axis"/>'
            f'<text x="{PAD_L + pw / 2}" y="{H - 6}" text-anchor="middle">{escape(xlabel)}</text>'
            f'<text x="14" y="{PAD_T + ph / 2}" text-anchor="middle" transform="rotate(-90 14 {PAD_T + ph / 2})">'
            f'{escape(ylabel)}</text>{body}</svg>')


def line_plot(title, series, xlabel="seconds", ylabel="", hlines=(), steps=True):
    """SERIES: {label: [(x, y), ...]}; HLINES: [(y, label)]. A step plot by default (queues change in steps)."""
    points = [p for s in series.values() for p in s if p[1] is not None]
    if not points:
        return ""
    xmax = _nice(max(x for x, _ in points) or 1)
    ymax = _nice(max([y for _, y in points] + [y for y, _ in hlines] + [1]))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(x):
        return PAD_L + pw * x / xmax

    def py(y):
        return PAD_T + ph - ph * y / ymax

    body, legend = [], []
    for i, (label, pts) in enumerate(series.items()):
        pts = [(x, y) for x, y in pts if y is not None]
        if not pts:
            continue
        color = COLORS[i % len(COLORS)]
        path, prev = [], None
        for x, y in pts:
            if prev is not None and steps:
                path.append(f"{px(x):.1f},{py(prev):.1f}")
            path.append(f"{px(x):.1f},{py(y):.1f}")
            prev = y
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(path)}"/>')
        legend.append(f'<text x="{W - PAD_R - 4}" y="{PAD_T + 14 + 14 * len(legend)}" text-anchor="end" '
                      f'fill="{color}">{escape(label)}</text>')
    for y, label in hlines:
        body.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{py(y):.1f}" y2="{py(y):.1f}" class="ref"/>'
                    f'<text x="{PAD_L + 4}" y="{py(y) - 4:.1f}" class="ref">{escape(label)}</text>')
    return _frame(title, xlabel, ylabel, xmax, ymax, "".join(body + legend))


def histogram(title, values, xlabel="seconds", bins=20):
    if not values:
        return ""
    xmax = _nice(max(values) or 1)
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / xmax * bins))] += 1
    ymax = _nice(max(counts))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    bars = []
    for i, c in enumerate(counts):
        if c:
            h = ph * c / ymax
            bars.append(f'<rect x="{PAD_L + pw * i / bins + 1:.1f}" y="{PAD_T + ph - h:.1f}" '
                        f'width="{pw / bins - 2:.1f}" height="{h:.1f}" fill="{COLORS[0]}"><title>{c}</title></rect>')
    return _frame(title, xlabel, "connections", xmax, ymax, "".join(bars))


def timeline(title, lanes, xmax):
    """LANES: [(label, [(t, kind, tooltip), ...])]: one row of marks per guest, colored by event kind."""
    if not lanes:
        return ""
    kinds = sorted({k for _, marks in lanes for _, k, _ in marks})
    color = {k: COLORS[i % len(COLORS)] for i, k in enumerate(kinds)}
    xmax = _nice(xmax or 1)
    row, left = 22, 150
    legend_rows = 1 + sum(14 + 7 * len(k) + 16 for k in kinds) // (W - left)
    height = PAD_T + row * len(lanes) + 30 + 18 * legend_rows
    pw = W - left - PAD_R
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" class="plot" role="img" '
           f'aria-label="{escape(title)}"><title>{escape(title)}</title><text x="{left}" y="18" class="title">'
           f'{escape(title)}</text>']
    for i, (label, marks) in enumerate(lanes):
        y = PAD_T + row * i + row / 2
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{escape(label)}</text>'
                   f'<line x1="{left}" x2="{W - PAD_R}" y1="{y}" y2="{y}" class="grid"/>')
        step = max(1, len(marks) // MAX_MARKS)
        for t, kind, tip in marks[::step]:
            out.append(f'<circle cx="{left + pw * min(t, xmax) / xmax:.1f}" cy="{y}" r="4" fill="{color[kind]}">'
                       f'<title>{escape(tip)}</title></circle>')
    base = PAD_T + row * len(lanes)
    for i in range(5):
        out.append(f'<text x="{left + pw * i / 4:.1f}" y="{base + 14}" text-anchor="middle">{_fmt(xmax * i / 4)} s</text>')
    x, y = left, base + 32
    for k in kinds:
        width = 14 + 7 * len(k) + 16
        if x + width > W:
            x, y = left, y + 18
        out.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{color[k]}"/><text x="{x + 8}" y="{y + 4}">'
                   f'{escape(k)}</text>')
        x += width
    out.append("</svg>")
    return "".join(out)


def topology(nodes, links):
    """NODES: [(name, kind, label)] with kind host|switch; LINKS: [(a, b, label)]. Laid out by graphlayout:
    switches by depth from a root switch, hosts under their switch, no link through a node, labels clear."""
    d = graphlayout.layout(nodes, links)
    if not d.centers:
        return ""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {d.width:.0f} {d.height:.0f}" class="topo" '
           f'style="max-width:{d.width:.0f}px" role="img" aria-label="topology"><title>topology</title>']
    for a, b, points, _, _ in d.links:
        ends = f'data-link="{escape(a)} {escape(b)}"'
        if len(points) == 2:
            (x1, y1), (x2, y2) = points
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="link" stroke="#888" '
                       f'stroke-width="2" {ends}/>')
        else:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(f'<polyline points="{pts}" fill="none" class="link" stroke="#888" stroke-width="2" {ends}/>')
    for name in sorted(d.centers, key=graphlayout.natural):
        (x, y), (x0, y0, x1, y1) = d.centers[name], d.boxes[name]
        host = d.kinds[name] == "host"
        out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                   f'rx="{(y1 - y0) / 2 if host else 4:.0f}" class="{"host" if host else "switch"}" '
                   f'fill="{"#dbe9f6" if host else "#eee"}" stroke="{"#1f77b4" if host else "#666"}" '
                   f'data-node="{escape(name)}"/>'
                   f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" class="node" '
                   f'style="{_TEXT};font-weight:bold">{escape(name)}</text>')
        if name in d.node_labels:
            text, (_, ly0, _, _) = d.node_labels[name]
            out.append(f'<text x="{x:.1f}" y="{ly0 + 11:.1f}" text-anchor="middle" class="nodelabel" '
                       f'style="{_TEXT}" data-node="{escape(name)}">{escape(text)}</text>')
    for a, b, _, label, box in d.links:     # last: on top of the links they name
        if label:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            out.append(f'<rect x="{box[0]:.1f}" y="{box[1]:.1f}" width="{box[2] - box[0]:.1f}" '
                       f'height="{box[3] - box[1]:.1f}" fill="#fff" opacity="0.85" class="labelbg"/>')
            out.append(f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" class="linklabel" '
                       f'style="{_TEXT};{_HALO}" data-link="{escape(a)} {escape(b)}">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


_TEXT = f"font-family:sans-serif;font-size:{graphlayout.FONT_PX}px;fill:#333"
_HALO = "paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round"


def time_sequence(title, sent, acked, window, marks=(), zero_spans=()):
    """The Stevens / tcptrace time-sequence graph: bytes sent (SENT: [(t, seq)]), acknowledged (ACKED) and the
    receive-window limit (WINDOW: ack + window), against time; MARKS: [(t, seq, label, tooltip)] drawn as
    crosses (retransmissions, window probes); ZERO_SPANS: [(t1, t2)] shaded (the peer's window was zero)."""
    points = [p for s in (sent, acked, window) for p in s]
    if not points:
        return ""
    xmax = _nice(max(t for t, _ in points) or 1)
    # The window limit can leap far above what was ever sent once a reader drains its buffer: the axis
    # follows the data (the window line is clipped at the top).
    ymax = _nice(max([y for _, y in sent + acked] + [1]) * 1.25)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(x):
        return PAD_L + pw * min(x, xmax) / xmax

    def py(y):
        return PAD_T + ph - ph * min(y, ymax) / ymax

    body = []
    for t1, t2 in zero_spans:
        body.append(f'<rect x="{px(t1):.1f}" y="{PAD_T}" width="{max(1.0, px(t2) - px(t1)):.1f}" height="{ph}" '
                    f'fill="#fdecea"><title>zero window {t1:.2f}-{t2:.2f} s</title></rect>')
    legend = []
    for i, (label, pts, color, width) in enumerate((("sent (snd_nxt)", sent, COLORS[0], 2),
                                                   ("acknowledged (snd_una)", acked, COLORS[2], 2),
                                                   ("window limit (snd_una + snd_wnd)", window, COLORS[1], 1))):
        if not pts:
            continue
        path, prev = [], None
        for x, y in pts:
            if prev is not None:
                path.append(f"{px(x):.1f},{py(prev):.1f}")
            path.append(f"{px(x):.1f},{py(y):.1f}")
            prev = y
        dash = ' stroke-dasharray="5 3"' if i == 2 else ""
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="{width}"{dash} points="{" ".join(path)}"/>')
        legend.append(f'<text x="{PAD_L + 6}" y="{PAD_T + 14 + 14 * len(legend)}" fill="{color}">{escape(label)}</text>')
    for t, y, label, tip in marks:
        x, yy = px(t), py(y)
        body.append(f'<g class="mark"><path d="M{x - 4:.1f},{yy - 4:.1f}L{x + 4:.1f},{yy + 4:.1f}M{x - 4:.1f},{yy + 4:.1f}'
                    f'L{x + 4:.1f},{yy - 4:.1f}" stroke="#000" stroke-width="1.5"/><title>{escape(tip)}</title></g>')
    if marks:
        labels = sorted({m[2] for m in marks})
        legend.append(f'<text x="{PAD_L + 6}" y="{PAD_T + 14 + 14 * len(legend)}">x: {escape(", ".join(labels))}</text>')
    return _frame(title, "seconds", "bytes (relative sequence)", xmax, ymax, "".join(body + legend))

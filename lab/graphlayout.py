"""Where to draw a network's nodes, links and labels so that no link runs through a node and no label hides
under one. Pure and deterministic (same input, same drawing); plots.topology() renders the result as SVG.

Layered: each connected part hangs from a root switch (the switches' centre, ties broken by name), switches
by their depth from it, hosts under their switch. Every node owns a horizontal band as wide as its subtree;
its children share the band below it, so a link between parent and child stays inside the parent's band,
where the only other nodes are the child's siblings (checked, and rows moved apart until it is clear).
When the switches form a chain and each has hosts (dumbbell, single, star, a line of access switches), they
sit in one row, left to right, with their hosts beneath: a dumbbell reads clients - s1 - bottleneck - s2 -
servers. A link outside the tree
(a ring, a host on two switches) bends around the nodes in its way.

Labels sit on their link, on a white halo, at the first point along it that covers no node box, node label
or earlier link label. Text sizes are estimated for an 11 px sans-serif font, generously.
"""
import re
from collections import deque
from dataclasses import dataclass, field

FONT_PX = 11
CHAR_W, BOLD_W = 7.0, 7.8        # px per character (sans-serif 11 px is about 6-7; bold wider): estimate high
TEXT_H = 14                      # px of a line of text, ascent to descent, with a little room
NODE_H = 28
ROW_GAP = 90                     # centre to centre of two rows of nodes, at first
H_GAP = 18                       # px between two neighbours' widest part (box or label)
MARGIN = 16
LABEL_TS = (0.5, 0.6, 0.4, 0.7, 0.3, 0.78, 0.22, 0.85, 0.15)   # where along a link (parent first) to try its label
FAN_T = 0.75                     # a fan of labelled links: their labels side by side this far towards the children
CELL = 64                        # spatial index cell


def natural(name):
    """Sort key: h2 before h10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def text_width(text, bold=False):
    return len(text) * (BOLD_W if bold else CHAR_W) + 4


@dataclass
class Drawing:
    width: float
    height: float
    centers: dict = field(default_factory=dict)     # node -> (x, y)
    boxes: dict = field(default_factory=dict)       # node -> (x0, y0, x1, y1)
    kinds: dict = field(default_factory=dict)       # node -> host | switch
    node_labels: dict = field(default_factory=dict)  # node -> (text, (x0, y0, x1, y1))
    links: list = field(default_factory=list)       # (a, b, [(x, y), ...], label text or "", label box or None)


class Grid:
    """A spatial index of boxes: which stored boxes may overlap a query box."""

    def __init__(self):
        self.cells = {}

    def _keys(self, box):
        x0, y0, x1, y1 = box
        for i in range(int(x0 // CELL), int(x1 // CELL) + 1):
            for j in range(int(y0 // CELL), int(y1 // CELL) + 1):
                yield i, j

    def add(self, box, tag):
        for k in self._keys(box):
            self.cells.setdefault(k, []).append((box, tag))

    def near(self, box):
        seen = {}
        for k in self._keys(box):
            for b, tag in self.cells.get(k, ()):
                seen[(b, tag)] = None
        return list(seen)


def overlap(a, b, margin=0.0):
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def segment_hits_box(p, q, box, margin=0.0):
    """True when segment P-Q passes through BOX grown by MARGIN (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin
    dx, dy = q[0] - p[0], q[1] - p[1]
    lo, hi = 0.0, 1.0
    for d, a, b in ((dx, p[0] - x0, x1 - p[0]), (dy, p[1] - y0, y1 - p[1])):
        for num, den in ((a, -d), (b, d)):
            if den == 0:
                if num < 0:
                    return False
            else:
                t = num / den
                if den < 0:
                    lo = max(lo, t)
                else:
                    hi = min(hi, t)
    return lo < hi


def _components(names, adj):
    seen, parts = set(), []
    for start in sorted(names, key=lambda n: (n not in adj or not adj[n], natural(n))):
        if start in seen:
            continue
        part, todo = [], [start]
        seen.add(start)
        while todo:
            n = todo.pop()
            part.append(n)
            for m in adj[n]:
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        parts.append(part)
    return parts


def _distances(adj, start):
    dist, todo = {start: 0}, deque([start])
    while todo:
        n = todo.popleft()
        for m in sorted(adj[n], key=natural):
            if m not in dist:
                dist[m] = dist[n] + 1
                todo.append(m)
    return dist


def _root(part, kinds, adj):
    switches = sorted((n for n in part if kinds[n] == "switch"), key=natural)
    if not switches:
        return sorted(part, key=natural)[0]
    if len(switches) > 50:        # a big fabric: the centre costs O(n^2); the first switch is a fine root
        return switches[0]
    ecc = {s: max(_distances(adj, s).get(t, 0) for t in switches) for s in switches}
    return min(switches, key=lambda s: (ecc[s], natural(s)))


def _path_order(members, adj):
    """MEMBERS in path order when the links among them form one simple path, else None."""
    inner = {m: sorted((n for n in adj[m] if n in members), key=natural) for m in members}
    if any(len(v) > 2 for v in inner.values()) or sum(map(len, inner.values())) != 2 * (len(members) - 1):
        return None
    order, prev = [min((m for m in members if len(inner[m]) <= 1), key=natural)], None
    while len(order) < len(members):
        nxt = [n for n in inner[order[-1]] if n != prev]
        if not nxt:
            return None           # not connected through MEMBERS alone
        prev = order[-1]
        order.append(nxt[0])
    return order


def _chain(part, kinds, adj):
    """The nodes of the row, in order, when PART is drawn as one row with hosts beneath, else None.

    A row is a chain of access switches (each with hosts, each host on one switch), or hosts alone in a line
    (pair). A switch without hosts is a core switch: the part is then drawn as a tree below its centre."""
    switches = {n for n in part if kinds[n] == "switch"}
    if not switches:
        return _path_order(set(part), adj)
    if any(all(kinds[m] == "switch" for m in adj[s]) for s in switches):
        return None
    if any(kinds[n] == "host" and (len(adj[n]) != 1 or kinds[next(iter(adj[n]))] != "switch") for n in part):
        return None
    return _path_order(switches, adj)


class _Layout:
    def __init__(self, nodes, links):
        self.kinds = {n: k for n, k, _ in nodes}
        self.labels = {n: lab for n, _, lab in nodes}
        self.adj = {n: set() for n in self.kinds}
        self.links = []
        for a, b, label in links:
            if a in self.kinds and b in self.kinds and a != b:
                self.adj[a].add(b)
                self.adj[b].add(a)
                self.links.append((a, b, label or ""))
        uplink = {}
        for a, b, label in self.links:
            for end in (a, b):
                if self.kinds[end] == "host" and label:   # siblings' labels fit side by side at 3/4 down
                    uplink[end] = max(uplink.get(end, 0), (text_width(label) + 12) / FAN_T - H_GAP)
        self.need = {n: max(self.box_w(n), text_width(self.labels[n] or ""), uplink.get(n, 0)) + H_GAP
                     for n in self.kinds}
        self.parent, self.depth, self.x = {}, {}, {}

    def box_w(self, n):
        return max(44 if self.kinds[n] == "switch" else 40, text_width(n, bold=True) + 10)

    def place(self):
        left = MARGIN
        for part in _components(list(self.kinds), self.adj):
            chain = _chain(part, self.kinds, self.adj)
            left = self._place_chain(chain, left) if chain else self._place_tree(part, left)
        return left + MARGIN - H_GAP / 2

    def _trunk_room(self, a, b):
        label = next((lab for x, y, lab in self.links if {x, y} == {a, b} and lab), "")
        return text_width(label) + 2 * H_GAP if label else 0

    def _place_chain(self, order, left):
        for s in order:
            self.depth[s] = 0
        for i, s in enumerate(order):
            hosts = sorted((h for h in self.adj[s] if self.kinds[h] == "host" and h not in self.depth), key=natural)
            width = max(self.need[s], sum(self.need[h] for h in hosts))
            if i:   # room between two switches for the trunk's label
                gap = self.x[order[i - 1]] + self.box_w(order[i - 1]) / 2 + self._trunk_room(order[i - 1], s)
                left = max(left, gap + self.box_w(s) / 2 - width / 2)
            self.x[s], self.depth[s], self.parent[s] = left + width / 2, 0, order[i - 1] if i else None
            h_left = left + (width - sum(self.need[h] for h in hosts)) / 2
            for h in hosts:
                self.x[h], self.depth[h], self.parent[h] = h_left + self.need[h] / 2, 1, s
                h_left += self.need[h]
            left += width
        return left

    def _place_tree(self, part, left):
        root = _root(part, self.kinds, self.adj)
        order, children = [root], {root: []}
        self.depth[root], self.parent[root] = 0, None
        todo = deque([root])
        while todo:       # breadth first: every node as high as it can be; hosts before switches, by name
            n = todo.popleft()
            for m in sorted(self.adj[n], key=lambda m: (self.kinds[m] != "host", natural(m))):
                if m not in self.depth:
                    self.depth[m], self.parent[m] = self.depth[n] + 1, n
                    children[n].append(m)
                    children[m] = []
                    order.append(m)
                    todo.append(m)
        span = {}
        for n in reversed(order):
            span[n] = max(self.need[n], sum(span[c] for c in children[n]))
        bands = {root: (left, left + span[root])}
        for n in order:
            lo, hi = bands[n]
            self.x[n] = (lo + hi) / 2
            c_left = lo + (hi - lo - sum(span[c] for c in children[n])) / 2
            for c in children[n]:
                bands[c] = (c_left, c_left + span[c])
                c_left += span[c]
        return left + span[root]


def _route(p, q, obstacles, skip):
    """Points from P to Q that pass through no obstacle box: straight, or bent once around."""
    def clear(points):
        for a, b in zip(points, points[1:]):
            box = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
            for ob, tag in obstacles.near(box):
                if tag not in skip and segment_hits_box(a, b, ob, margin=3):
                    return False
        return True

    if clear([p, q]):
        return [p, q]
    mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
    dx, dy = q[0] - p[0], q[1] - p[1]
    length = max(1.0, (dx * dx + dy * dy) ** 0.5)
    nx, ny = -dy / length, dx / length
    for k in range(1, 40):
        for side in (1, -1):
            off = side * k * 20
            bend = (mx + nx * off, my + ny * off)
            if clear([p, bend, q]):
                return [p, bend, q]
    return [p, q]


def layout(nodes, links):
    """NODES: [(name, kind, label)] with kind host|switch; LINKS: [(a, b, label)]. A Drawing."""
    lay = _Layout(nodes, links)
    width = lay.place()
    rows = max(lay.depth.values(), default=0) + 1
    row_gap = ROW_GAP
    for _ in range(8):             # move rows apart until no tree link passes through a node
        drawing = _draw(lay, width, row_gap, rows)
        if drawing is not None:
            return drawing
        row_gap *= 1.35
    return _draw(lay, width, row_gap, rows, force=True)


def _draw(lay, width, row_gap, rows, force=False):
    top = MARGIN + NODE_H / 2
    d = Drawing(width=round(width, 1), height=round(top + (rows - 1) * row_gap + NODE_H / 2 + TEXT_H + 4 + MARGIN, 1))
    index = Grid()
    for n in sorted(lay.kinds, key=natural):
        x, y = round(lay.x[n], 1), round(top + lay.depth[n] * row_gap, 1)
        w = lay.box_w(n)
        d.centers[n], d.kinds[n] = (x, y), lay.kinds[n]
        d.boxes[n] = (x - w / 2, y - NODE_H / 2, x + w / 2, y + NODE_H / 2)
        index.add(d.boxes[n], n)
        if lay.labels[n]:
            lw = text_width(lay.labels[n])
            box = (x - lw / 2, y + NODE_H / 2 + 2, x + lw / 2, y + NODE_H / 2 + 2 + TEXT_H)
            d.node_labels[n] = (lay.labels[n], box)
            index.add(box, ("label", n))
    routes = []
    for i, (a, b, label) in enumerate(lay.links):
        tree = lay.parent.get(a) == b or lay.parent.get(b) == a
        if lay.parent.get(a) == b:
            a, b = b, a               # parent first: labels are placed from the parent down
        p, q = d.centers[a], d.centers[b]
        points = [p, q] if tree else _route(p, q, index, {a, b, ("label", a), ("label", b)})
        if tree and not force:
            box = (min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1]))
            for ob, tag in index.near(box):
                if tag not in (a, b) and tag not in (("label", a), ("label", b)) and segment_hits_box(p, q, ob, 2):
                    return None
        routes.append((i, a, b, points, label))
    kids = {}
    for c, p in lay.parent.items():
        if p is not None and d.kinds[c] == "host" and d.centers[c][1] > d.centers[p][1]:
            kids.setdefault(p, []).append(d.centers[c][0])
    placed = {}
    for i, a, b, points, label in sorted(routes, key=lambda r: -len(r[4])):   # long labels choose first
        box = _place_label(label, points, index, _fan_t(kids.get(a, ()), label)) if label else None
        placed[i] = (a, b, points, label, box)
    d.links = [placed[i] for i in sorted(placed)]
    return d


def _fan_t(xs, label):
    """Where along a fan of links to hosts at XS the hosts' link labels fit side by side (None: no fan)."""
    xs = sorted(xs)
    if len(xs) < 2:
        return None
    gap = min(b - a for a, b in zip(xs, xs[1:]))
    return min(0.85, max(0.5, (text_width(label) + 8) / gap)) if gap > 0 else None


def _place_label(text, points, index, first_t=None):
    """A box for TEXT on the polyline POINTS covering nothing already placed (the least-bad one otherwise)."""
    w = text_width(text)
    best = None
    segments = list(zip(points, points[1:]))
    for t in ((first_t,) if first_t else ()) + LABEL_TS:
        for p, q in segments:
            cx, cy = p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t
            box = (cx - w / 2, cy - TEXT_H / 2, cx + w / 2, cy + TEXT_H / 2)
            hits = [tag for ob, tag in index.near(box) if overlap(box, ob, margin=2)]
            nodes_hit = sum(1 for tag in hits if isinstance(tag, str))
            score = (nodes_hit, len(hits))
            if best is None or score < best[0]:
                best = (score, box)
            if not hits:
                index.add(box, ("link", text, t))
                return box
    index.add(best[1], ("link", text))
    return best[1]

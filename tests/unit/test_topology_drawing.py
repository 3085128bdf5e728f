"""The network drawing's geometry (lab/graphlayout.py, plots.topology): no link passes through a node that is
not one of its ends, no label lies on a node box, on a node label or on another label; on the shipped tree,
dumbbell and star topologies (built by their own Topo classes), a ring, and many random trees.

The geometry is checked here by sampling points along each link (1 px apart), not with the layout's own
clipping code, so the check does not repeat the code it checks."""
import random
import time
import xml.etree.ElementTree as ET

import pytest

from lab import graphlayout, plots, topology

SVG = "{http://www.w3.org/2000/svg}"


def _graph(name, *args, **params):
    """nodes, links of a shipped topology, as lab/report.py passes them (IPs as host labels, bw as text)."""
    topo = topology.build(name, None, args, params)
    hosts, switches = sorted(topo.hosts()), topo.switches()
    nodes = [(h, "host", f"10.0.0.{i + 1}") for i, h in enumerate(hosts)] + [(s, "switch", "") for s in switches]
    links = [(a, b, f"{info['bw']:g} Mbit/s" if info.get("bw") else "") for a, b, info in topo.links(withInfo=True)]
    return nodes, links


def _inside(point, box, shrink=0.5):
    return box[0] + shrink < point[0] < box[2] - shrink and box[1] + shrink < point[1] < box[3] - shrink


def _crossings(d):
    """(link, node) pairs where a drawn link passes through the box of a node that is not one of its ends."""
    found = []
    for a, b, points, _, _ in d.links:
        for p, q in zip(points, points[1:]):
            steps = max(1, int(max(abs(q[0] - p[0]), abs(q[1] - p[1]))))
            samples = [(p[0] + (q[0] - p[0]) * i / steps, p[1] + (q[1] - p[1]) * i / steps) for i in range(steps + 1)]
            for n, box in d.boxes.items():
                if n not in (a, b) and any(_inside(s, box) for s in samples):
                    found.append((f"{a}-{b}", n))
    return found


def _overlaps(first, second):
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def _label_problems(d):
    """Labels lying on a node box, a node label or another link label."""
    labels = [(f"link {a}-{b}", box) for a, b, _, text, box in d.links if text]
    labels += [(f"label of {n}", box) for n, (_, box) in d.node_labels.items()]
    found = []
    for i, (what, box) in enumerate(labels):
        found += [(what, n) for n, nb in d.boxes.items() if _overlaps(box, nb)]
        found += [(what, other) for other, ob in labels[i + 1:] if _overlaps(box, ob)]
    return found


def _check(nodes, links):
    d = graphlayout.layout(nodes, links)
    assert set(d.centers) == {n for n, _, _ in nodes}
    assert _crossings(d) == []
    assert _label_problems(d) == []
    for n, (x0, y0, x1, y1) in d.boxes.items():          # everything inside the canvas
        assert 0 <= x0 and x1 <= d.width and 0 <= y0 and y1 <= d.height, n
    for _, (x0, y0, x1, y1) in d.node_labels.values():
        assert 0 <= x0 and x1 <= d.width and y1 <= d.height
    for a, b, _, text, box in d.links:
        if text:
            assert 0 <= box[0] and box[2] <= d.width and 0 <= box[1] and box[3] <= d.height, (a, b)
    return d


@pytest.mark.parametrize("depth,fanout,bw", [(2, 2, 10), (3, 2, 100), (2, 3, None), (3, 3, 1), (1, 4, 5),
                                             (2, 8, 1000)])
def test_tree(depth, fanout, bw):
    d = _check(*_graph("tree", depth, fanout, **({"bw": bw} if bw else {})))
    # Switches by depth: the root on top, its children one row down, hosts at the bottom.
    ys = sorted({d.centers[n][1] for n in d.centers})
    assert len(ys) == depth + 1
    assert d.centers["s1"][1] == ys[0] and all(d.centers[f"h{i}"][1] == ys[-1] for i in range(1, fanout ** depth + 1))


def test_the_trunk_that_used_to_hide_under_s2():
    """Issue 14 item 7: in tree,2,2 the s1-s3 trunk was drawn straight through s2, its label under s2."""
    d = _check(*_graph("tree", 2, 2, bw=10))
    [(a, b, points, text, box)] = [link for link in d.links if {link[0], link[1]} == {"s1", "s3"}]
    assert text == "10 Mbit/s" and not _overlaps(box, d.boxes["s2"])
    assert ("s1-s3", "s2") not in _crossings(d)


def test_dumbbell_reads_clients_bottleneck_servers():
    d = _check(*_graph("dumbbell", 3, 2, bw=10))
    x = {n: c[0] for n, c in d.centers.items()}
    clients, servers = [x["c1"], x["c2"], x["c3"]], [x["sv1"], x["sv2"]]
    assert max(clients) < min(servers) and x["s1"] < x["s2"]
    assert min(clients) <= x["s1"] <= max(clients) and min(servers) <= x["s2"] <= max(servers)
    assert d.centers["s1"][1] == d.centers["s2"][1] < d.centers["c1"][1] == d.centers["sv1"][1]
    [bottleneck] = [link for link in d.links if {link[0], link[1]} == {"s1", "s2"}]
    assert bottleneck[3] == "10 Mbit/s"
    lx0, _, lx1, _ = bottleneck[4]
    assert d.boxes["s1"][2] < lx0 and lx1 < d.boxes["s2"][0]        # the label sits between the switches


def test_star_with_a_labelled_server_link():
    d = _check(*_graph("star", 8, bw=100))
    [(a, b, _, text, _)] = [link for link in d.links if link[3]]
    assert {a, b} == {"s1", "server"} and text == "100 Mbit/s"
    nodes, links = _graph("star", 12)
    _check(nodes, [(a, b, "12.5 Mbit/s") for a, b, _ in links])       # a fan of labelled links


def test_pair_single_and_a_ring():
    _check(*_graph("pair", bw=20))
    _check(*_graph("single", 5, bw=3))
    ring = [(f"s{i}", "switch", "") for i in range(1, 6)] + [(f"h{i}", "host", f"10.0.0.{i}") for i in range(1, 6)]
    links = [(f"s{i}", f"s{i % 5 + 1}", f"{i} Mbit/s") for i in range(1, 6)] + [(f"s{i}", f"h{i}", "") for i in range(1, 6)]
    d = _check(ring, links)
    assert any(len(points) == 3 for _, _, points, _, _ in d.links), "the ring's closing link should bend around"


@pytest.mark.parametrize("seed", range(40))
def test_random_trees_of_switches_with_hosts(seed):
    rng = random.Random(seed)
    switches = [f"s{i}" for i in range(1, rng.randint(1, 12) + 1)]
    links = [(switches[rng.randrange(i)], s, rng.choice(["", "10 Mbit/s", "0.5 Mbit/s", "1000 Mbit/s"]))
             for i, s in enumerate(switches) if i]
    nodes = [(s, "switch", "") for s in switches]
    for i in range(1, rng.randint(1, 25) + 1):
        nodes.append((f"h{i}", "host", f"10.0.{i // 256}.{i % 256}"))
        links.append((f"h{i}", rng.choice(switches), rng.choice(["", "", "5 Mbit/s"])))
    _check(nodes, links)


def test_the_drawing_is_deterministic_and_draws_what_was_laid_out():
    nodes, links = _graph("tree", 2, 2, bw=10)
    svg = plots.topology(nodes, links)
    assert svg == plots.topology(nodes, links)
    d = graphlayout.layout(nodes, links)
    root = ET.fromstring(svg)
    lines = {el.get("data-link"): [(float(el.get("x1")), float(el.get("y1"))), (float(el.get("x2")), float(el.get("y2")))]
             for el in root.iter(f"{SVG}line")}
    assert lines == {f"{a} {b}": [tuple(p) for p in points] for a, b, points, _, _ in d.links}
    rects = {el.get("data-node"): float(el.get("x")) for el in root.iter(f"{SVG}rect") if el.get("data-node")}
    assert rects == {n: box[0] for n, box in d.boxes.items()}
    labels = [el.text for el in root.iter(f"{SVG}text") if el.get("class") == "linklabel"]
    assert labels == ["10 Mbit/s"] * 6


def test_text_is_escaped_and_unknown_link_ends_are_skipped():
    svg = plots.topology([("<h1>", "host", "a&b"), ("s1", "switch", "")], [("<h1>", "s1", "<b>"), ("s1", "nowhere", "x")])
    ET.fromstring(svg)                                 # well-formed
    assert "<h1>" not in svg and "&lt;h1&gt;" in svg and "&lt;b&gt;" in svg and "nowhere" not in svg
    assert plots.topology([], []) == ""


def test_a_thousand_hosts_are_laid_out_quickly():
    start = time.monotonic()
    d = graphlayout.layout(*_graph("tree", 3, 8, bw=10))
    nodes = [("s1", "switch", "")] + [(f"h{i}", "host", f"10.0.{i // 256}.{i % 256}") for i in range(1, 1001)]
    graphlayout.layout(nodes, [("s1", n, "1 Mbit/s") for n, _, _ in nodes[1:]])
    assert time.monotonic() - start < 5
    assert len(d.centers) == 512 + 73

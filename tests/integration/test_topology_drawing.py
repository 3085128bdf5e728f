"""The network drawing in a real browser (Debian's chromium, headless, via selenium): from the rendered
elements' geometry, no link crosses the box of a node that is not one of its ends, no label lies on a node
box, and the bottleneck's label is on top (what the browser finds at its centre is the label itself).

No network is built: the SVG is rendered from the shipped topologies' own Topo objects into an HTML file,
with the report's stylesheet."""
import os
import shutil

import pytest

from lab import plots, report, topology

IN_CI = os.environ.get("CI") == "true"

GEOMETRY = """
const out = {nodes: {}, links: [], labels: [], svg: null};
const svg = document.querySelector('svg.topo');
const r = svg.getBoundingClientRect();
out.svg = [r.left, r.top, r.right, r.bottom];
const box = el => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
const screen = (el, x, y) => { const p = new DOMPoint(x, y).matrixTransform(el.getScreenCTM()); return [p.x, p.y]; };
for (const el of svg.querySelectorAll('rect[data-node]')) out.nodes[el.dataset.node] = box(el);
for (const el of svg.querySelectorAll('line[data-link]'))
  out.links.push([el.dataset.link, [screen(el, el.x1.baseVal.value, el.y1.baseVal.value),
                                    screen(el, el.x2.baseVal.value, el.y2.baseVal.value)]]);
for (const el of svg.querySelectorAll('polyline[data-link]'))
  out.links.push([el.dataset.link, Array.from(el.points).map(p => screen(el, p.x, p.y))]);
for (const el of svg.querySelectorAll('text.linklabel, text.nodelabel')) {
  const b = box(el);
  const top = document.elementFromPoint((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
  out.labels.push({cls: el.getAttribute('class'), text: el.textContent, of: el.dataset.link || el.dataset.node,
                   box: b, on_top: top === el || (top && top.classList.contains('labelbg'))});
}
return out;
"""


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        message = "Debian's chromium and chromium-driver are needed (scripts/test.sh installs them)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def _graph(name, *args, **params):
    topo = topology.build(name, None, args, params)
    hosts = sorted(topo.hosts())
    nodes = [(h, "host", f"10.0.0.{i + 1}") for i, h in enumerate(hosts)] + [(s, "switch", "") for s in topo.switches()]
    links = [(a, b, f"{info['bw']:g} Mbit/s" if info.get("bw") else "") for a, b, info in topo.links(withInfo=True)]
    return nodes, links


def _render(browser, tmp_path, nodes, links):
    page = tmp_path / "drawing.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><style>"
                    f"{getattr(report, 'STYLE', '')}</style></head><body><h2>Network</h2>"
                    f"{plots.topology(nodes, links)}</body></html>")
    browser.get(page.as_uri())
    return browser.execute_script(GEOMETRY)


def _inside(point, box, shrink=1.0):
    return box[0] + shrink < point[0] < box[2] - shrink and box[1] + shrink < point[1] < box[3] - shrink


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _problems(geo):
    found = []
    for ends, points in geo["links"]:
        a, b = ends.split(" ")
        for p, q in zip(points, points[1:]):
            steps = max(1, int(max(abs(q[0] - p[0]), abs(q[1] - p[1]))))
            samples = [(p[0] + (q[0] - p[0]) * i / steps, p[1] + (q[1] - p[1]) * i / steps) for i in range(steps + 1)]
            found += [f"link {ends} crosses {n}" for n, box in geo["nodes"].items()
                      if n not in (a, b) and any(_inside(s, box) for s in samples)]
    for label in geo["labels"]:
        found += [f"{label['cls']} {label['text']!r} of {label['of']} lies on {n}"
                  for n, box in geo["nodes"].items() if _overlap(label["box"], box)]
        if not label["on_top"]:
            found.append(f"{label['cls']} {label['text']!r} of {label['of']} is covered")
        sx0, sy0, sx1, sy1 = geo["svg"]
        x0, y0, x1, y1 = label["box"]
        if not (sx0 <= x0 and x1 <= sx1 and sy0 <= y0 and y1 <= sy1):
            found.append(f"{label['cls']} {label['text']!r} of {label['of']} is outside the drawing")
    return found


@pytest.mark.parametrize("depth,fanout", [(2, 2), (3, 2), (2, 3)])
def test_tree_drawing_has_no_link_through_a_node(browser, tmp_path, depth, fanout):
    nodes, links = _graph("tree", depth, fanout, bw=10)
    geo = _render(browser, tmp_path, nodes, links)
    assert len(geo["nodes"]) == len(nodes) and len(geo["links"]) == len(links)
    assert len([lab for lab in geo["labels"] if lab["cls"] == "linklabel"]) == len(links)
    assert _problems(geo) == []


def test_the_s1_s3_trunk_and_its_label_are_clear_of_s2(browser, tmp_path):
    """Issue 14 item 7, as a reader sees it: the trunk's '10 Mbit/s' is on top and not under s2."""
    nodes, links = _graph("tree", 2, 2)
    links = [(a, b, "10 Mbit/s" if {a, b} == {"s1", "s3"} else "") for a, b, _ in links]
    geo = _render(browser, tmp_path, nodes, links)
    [label] = [lab for lab in geo["labels"] if lab["cls"] == "linklabel"]
    assert label["text"] == "10 Mbit/s" and set(label["of"].split()) == {"s1", "s3"}
    assert label["on_top"] and not _overlap(label["box"], geo["nodes"]["s2"])
    assert _problems(geo) == []


def test_dumbbell_bottleneck_label_is_visible(browser, tmp_path):
    geo = _render(browser, tmp_path, *_graph("dumbbell", 3, 2, bw=10))
    [label] = [lab for lab in geo["labels"] if lab["cls"] == "linklabel"]
    assert label["text"] == "10 Mbit/s" and label["on_top"]
    # Between the two switches, clients under s1 on the left, servers under s2 on the right.
    s1, s2 = geo["nodes"]["s1"], geo["nodes"]["s2"]
    assert s1[2] < label["box"][0] and label["box"][2] < s2[0]
    assert max(geo["nodes"][f"c{i}"][2] for i in (1, 2, 3)) < min(geo["nodes"][f"sv{i}"][0] for i in (1, 2))
    assert _problems(geo) == []


def test_star_drawing(browser, tmp_path):
    nodes, links = _graph("star", 12)
    geo = _render(browser, tmp_path, nodes, [(a, b, "100 Mbit/s") for a, b, _ in links])
    assert _problems(geo) == []

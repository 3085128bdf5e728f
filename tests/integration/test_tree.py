"""topologies/tree.py on a real network: Mininet's numbering, every host reaches every other, every link
(trunks included) carries the htb class of its bw, and the report's drawing of the run's own graph is clear."""
import pytest

from lab import graphlayout
from lab.network import LabNetwork, NetworkSpec

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def tree():
    with LabNetwork(NetworkSpec("tree", args=[2, 2], params={"bw": 10}), purpose="test tree") as lab:
        yield lab


def test_nodes_are_numbered_as_mininet_numbers_them(tree):
    graph = tree.graph()
    assert sorted(graph["switches"]) == ["s1", "s2", "s3"] and sorted(graph["hosts"]) == ["h1", "h2", "h3", "h4"]
    assert sorted(tuple(sorted(link[:2])) for link in graph["links"]) == [
        ("h1", "s2"), ("h2", "s2"), ("h3", "s3"), ("h4", "s3"), ("s1", "s2"), ("s1", "s3")]
    assert [tree.host(f"h{i}").IP() for i in range(1, 5)] == [f"10.0.0.{i}" for i in range(1, 5)]


def test_every_host_reaches_every_other(tree):
    assert tree.net.pingAll(timeout=2) == 0


def test_the_trunks_are_shaped_like_every_link(tree):
    for a, b in (("s1", "s3"), ("s1", "s2"), ("s3", "h4")):
        for intf in tree.link_interfaces(a, b):
            out = intf.node.cmd(f"tc class show dev {intf.name}")     # in the node's own namespace
            assert "rate 10Mbit" in out, (a, b, intf.name, out)


def test_the_drawing_of_this_run_is_clear(tree):
    graph = tree.graph()
    nodes = [(h, "host", tree.host(h).IP()) for h in graph["hosts"]] + [(s, "switch", "") for s in graph["switches"]]
    links = [(a, b, f"{bw:g} Mbit/s" if bw else "") for a, b, bw in graph["links"]]
    d = graphlayout.layout(nodes, links)
    [(_, _, points, text, box)] = [link for link in d.links if {link[0], link[1]} == {"s1", "s3"}]
    assert text == "10 Mbit/s" and not graphlayout.overlap(box, d.boxes["s2"])
    assert not graphlayout.segment_hits_box(points[0], points[-1], d.boxes["s2"])

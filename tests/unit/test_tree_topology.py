"""topologies/tree.py: Mininet's tree, numbered as Mininet numbers it, with its declared parameters, a host
cap, and loadable by `mn --custom topologies/tree.py --topo tree,2,2` (done here the way mn does it)."""
from pathlib import Path

import pytest
from mininet.topolib import TreeTopo as MininetTree
from mininet.util import buildTopo

from lab import topology

TREE = Path(__file__).resolve().parents[2] / "topologies" / "tree.py"


def _tree():
    return topology.find("tree")


def _shape(topo):
    return sorted(topo.switches()), sorted(topo.hosts()), sorted(tuple(sorted(link)) for link in topo.links())


@pytest.mark.parametrize("depth,fanout", [(1, 1), (1, 4), (2, 2), (3, 2), (2, 3), (4, 3)])
def test_same_nodes_and_links_as_mininets_tree(depth, fanout):
    ours = _tree()(depth, fanout)
    assert _shape(ours) == _shape(MininetTree(depth=depth, fanout=fanout))
    assert len(ours.hosts()) == fanout ** depth


def test_numbering_and_bandwidth_on_every_link():
    topo = _tree()(2, 2, bw=10)
    assert sorted(tuple(sorted(link)) for link in topo.links()) == [
        ("h1", "s2"), ("h2", "s2"), ("h3", "s3"), ("h4", "s3"), ("s1", "s2"), ("s1", "s3")]
    assert {info["bw"] for _, _, info in topo.links(withInfo=True)} == {10.0}
    assert all("bw" not in info for _, _, info in _tree()(2, 2).links(withInfo=True))
    assert _shape(_tree()()) == _shape(_tree()(2, 2))              # defaults: depth 2, fanout 2


def test_declared_parameters():
    assert _tree().PARAMS == {"depth": (int, 1, 4, "levels of switches"),
                              "fanout": (int, 1, 8, "children per switch"),
                              "bw": (float, 0.1, 10000, "Mbit/s on every link")}


@pytest.mark.parametrize("depth,fanout,words", [(4, 6, "1296 hosts"), (4, 8, "4096 hosts"), (0, 2, "depth must be 1-4"),
                                                (5, 1, "depth must be 1-4"), (2, 9, "fanout 1-8")])
def test_too_big_or_out_of_range_is_refused(depth, fanout, words):
    with pytest.raises(ValueError, match=words):
        _tree()(depth, fanout)


def test_the_largest_allowed_tree_stays_within_a_thousand_hosts():
    assert len(_tree()(4, 5).hosts()) == 625 and len(_tree()(3, 8).hosts()) == 512


def test_loads_as_mn_custom_file_does():
    # /usr/bin/mn --custom FILE: exec(compile(open(FILE).read(), FILE, 'exec'), customs, customs), then
    # TOPOS.update(customs['topos']) and buildTopo(TOPOS, '--topo' value).
    customs = {}
    exec(compile(TREE.read_text(), str(TREE), "exec"), customs, customs)  # noqa: S102 (mn's own loading)
    topos = {"tree": MininetTree}
    topos.update(customs["topos"])
    topo = buildTopo(topos, "tree,2,2")
    assert type(topo).__name__ == "TreeTopo" and type(topo) is not MininetTree
    assert _shape(topo) == _shape(MininetTree(depth=2, fanout=2))
    assert _shape(buildTopo(topos, "tree,3,2,bw=5")) == _shape(MininetTree(depth=3, fanout=2))


def test_shipped_and_found_by_name():
    assert "tree" in topology.available()
    assert topology.parse_ref("tree,3,2") == topology.Ref("tree", None, [3, 2], {})

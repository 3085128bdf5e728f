import pytest

from lab import topology
from lab.errors import LabError


def test_shipped_topologies():
    assert {"single", "pair", "dumbbell", "star"} <= set(topology.available())


@pytest.mark.parametrize("ref, expected", [
    ("single", ("single", None, [], {})),
    ("single,3", ("single", None, [3], {})),
    ("star,clients=8", ("star", None, [], {"clients": 8})),
    ("dumbbell,2,1,10.5", ("dumbbell", None, [2, 1, 10.5], {})),
])
def test_parse_ref_like_mn(ref, expected):
    assert topology.parse_ref(ref) == expected


def test_build_with_parameters():
    topo = topology.build("star", args=[3])
    assert sorted(topo.hosts()) == ["c1", "c2", "c3", "server"]
    assert topology.build("pair").switches() == []


def test_unknown_topology_names_the_shipped_ones():
    with pytest.raises(LabError, match="unknown topology 'ring'.*shipped: dumbbell, pair, single, star"):
        topology.find("ring")


def test_bad_parameter_names_the_topology():
    with pytest.raises(LabError, match="topology 'single'"):
        topology.build("single", params={"bogus": 1})


def test_user_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("from mininet.topo import Topo\nclass T(Topo):\n    def build(self):\n"
                 "        self.addLink(self.addHost('a'), self.addHost('b'))\ntopos = {'mine': T}\n")
    name, file, pos, kw = topology.parse_ref(str(f))
    assert name == "mine" and file == str(f)
    assert topology.build(name, file).hosts() == ["a", "b"]


def test_file_without_topos(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("x = 1\n")
    with pytest.raises(LabError, match="must define topos"):
        topology.load_file(f)

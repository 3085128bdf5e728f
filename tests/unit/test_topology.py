import subprocess
import sys
from pathlib import Path

import pytest

from lab import topology
from lab.topology import Ref, TopologyError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_topologies():
    assert {"single", "pair", "dumbbell", "star"} <= set(topology.available())


@pytest.mark.parametrize("ref, expected", [
    ("single", Ref("single")),
    ("single,3", Ref("single", args=[3])),
    ("star,clients=8", Ref("star", params={"clients": 8})),
    ("star,8,bw=10", Ref("star", args=[8], params={"bw": 10})),     # the same rule for the CLI and scenarios
    ("dumbbell,2,1,10.5", Ref("dumbbell", args=[2, 1, 10.5])),
    ("my.py:t,2", Ref("t", "my.py", [2])),
])
def test_parse_ref_like_mn(ref, expected):
    assert topology.parse_ref(ref) == expected


@pytest.mark.parametrize("ref, error", [
    ("single,abc", "topology arguments are numbers"),
    ("single,bw=1,2", "positional arguments come before"),
    ("single,nan", "topology arguments are numbers"),
    ("", "expected NAME"),
])
def test_parse_ref_refuses(ref, error):
    with pytest.raises(TopologyError, match=error):
        topology.parse_ref(ref)


def test_build_with_parameters():
    topo = topology.build("star", args=[3])
    assert sorted(topo.hosts()) == ["c1", "c2", "c3", "server"]
    assert topology.build("pair").switches() == []


def test_unknown_topology_names_the_shipped_ones():
    with pytest.raises(TopologyError, match="unknown topology 'ring'.*shipped: dumbbell, pair, single, star"):
        topology.find(Ref("ring"))


@pytest.mark.parametrize("ref, error", [
    (Ref("single", params={"bogus": 1}), "topology 'single' has no parameter 'bogus'"),
    (Ref("single", params={"hopts": {"defaultRoute": "dev lo; touch /tmp/x"}}), "has no parameter 'hopts'"),
    (Ref("single", params={"inNamespace": False}), "has no parameter 'inNamespace'"),
    (Ref("single", args=[10 ** 9]), "out of range \\(1 to 1000"),
    (Ref("single", args=[2.5]), "expected a whole number"),
    (Ref("single", args=[float("nan")]), "expected a whole number"),
    (Ref("single", params={"bw": float("inf")}), "out of range"),
    (Ref("single", args=[2, 1, 3]), "takes at most 2 arguments"),
    (Ref("star", args=[999], params={"clients": 3}), "clients is given twice"),
])
def test_parameters_are_declared_and_checked(ref, error):
    with pytest.raises(TopologyError, match=error):
        topology.build_ref(ref)


def test_user_file_needs_trust(tmp_path):
    f = tmp_path / "mine.py"
    marker = tmp_path / "ran"
    f.write_text(f"open({str(marker)!r}, 'w').close()\nfrom mininet.topo import Topo\nclass T(Topo):\n"
                 "    def build(self):\n        self.addLink(self.addHost('a'), self.addHost('b'))\ntopos = {'mine': T}\n")
    ref = topology.parse_ref(str(f))
    assert ref.file == str(f) and ref.name is None
    with pytest.raises(TopologyError, match="add --trust"):
        topology.find(ref)
    assert not marker.exists(), "an untrusted file must never run"
    assert topology.build_ref(ref, trusted=[tmp_path]).hosts() == ["a", "b"]
    assert ref.name == "mine" and marker.exists()


def test_file_without_topos(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("x = 1\n")
    with pytest.raises(TopologyError, match="must define topos"):
        topology.load_file(f, trusted=[tmp_path])


def test_node_names_that_cannot_make_interfaces_are_refused(tmp_path):
    f = tmp_path / "long.py"
    f.write_text("from mininet.topo import Topo\nclass T(Topo):\n    def build(self):\n"
                 "        self.addLink(self.addHost('averyveryverylonghost'), self.addSwitch('s1'))\ntopos = {'long': T}\n")
    with pytest.raises(TopologyError, match="at most 10 characters"):
        topology.build_ref(Ref("long", str(f)), trusted=[f])


def test_the_stand_in_topo_builds_the_shipped_files_like_mininet():
    """Where Mininet is absent, lab/topobase.py stands in: same hosts, switches and links."""
    from lab import topobase
    for name, cls in topology.available().items():
        real = cls()
        stand_in = type(cls.__name__, (topobase.Topo,), dict(cls.__dict__))()
        assert sorted(stand_in.hosts()) == sorted(real.hosts()), name
        assert sorted(stand_in.switches()) == sorted(real.switches()), name
        assert len(stand_in.links()) == len(real.links()), name


def test_every_scenario_validates_where_mininet_is_absent():
    # A student checks a scenario on a laptop without Mininet: `tcplab show` must still validate it.
    code = ("import sys; sys.modules['mininet'] = None\n"
            "from pathlib import Path\n"
            "from lab.library import load_scenario, describe\n"
            "files = sorted(Path('scenarios').rglob('*.yaml'))\n"
            "for f in files: describe(load_scenario(str(f), False))\n"
            "print(len(files))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout) >= 16


def test_the_storm_benchmarks_topology_validates():
    # `tcplab bench --only storm`: a server and 1000 clients, at the host limit
    out = subprocess.run([sys.executable, "-c", "import sys\n"
                          "from lab import bench, library\n"
                          "at = 1000 * bench.STORM_START_S_PER_CLIENT + 2\n"
                          "lines = '\\n'.join(f'  - {{name: cl{i}, host: c{i}, program: client, args: {{mode: connect, "
                          "server: \"{{server}}:9000\", count: 1}}}}' for i in range(1, 1001))\n"
                          "library.load_text(bench.STORM.format(clients=1000, client_lines=lines), name='storm')\n"
                          "print('ok')"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]

"""The os-ken controller with OVS userspace switches, on a real network."""
import subprocess
import time

import pytest

from lab.network import LabNetwork, NetworkSpec, leftovers
from lab.runrecord import RunRecord

from .helpers import guest, wait_until

pytestmark = pytest.mark.root


def _ovs_bridges():
    return set(subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True).stdout.split())


@pytest.fixture(scope="module")
def ofnet():
    with LabNetwork(NetworkSpec("dumbbell", args=[2, 1], controller="lab"), purpose="test controller") as lab:
        yield lab


def test_learning_switch_reachability(ofnet):
    assert ofnet.net.pingAll(timeout=2) == 0
    assert {e["dpid"] for e in ofnet.controller.events if e["event"] == "switch"} == {1, 2}


def _received(server):
    return sum(e.get("got", 0) for e in server.events if e.get("event") == "read")


def test_drop_rule_stops_a_flow_and_restore_resumes_it(ofnet):
    server = guest(ofnet, "sv1", "server", "--port", 9300, ready="listening")
    client = guest(ofnet, "c1", "client", "write", f"{ofnet.host('sv1').IP()}:9300", "--write-size", 16384,
                   "--pause", 0.005, "--duration", 8)
    assert wait_until(lambda: _received(server) > 100_000, 5)
    ofnet.controller.command(cmd="drop", src=ofnet.host("c1").IP(), dst=ofnet.host("sv1").IP())
    time.sleep(0.5)                              # what was in flight arrives
    stalled = _received(server)
    time.sleep(1.5)
    assert _received(server) == stalled, "data still arrived through a drop rule"
    ofnet.controller.command(cmd="restore")
    assert wait_until(lambda: _received(server) > stalled + 100_000, 6), "the flow did not resume after restore"
    client.stop(), server.stop()


def test_port_statistics_grow_with_traffic(ofnet):
    def latest():
        """The newest rx_bytes of each port of s1 (dpid 1)."""
        ports = {}
        for e in list(ofnet.controller.events):
            if e["event"] == "port-stats" and e["dpid"] == 1:
                ports[e["port"]] = e["rx_bytes"]
        return ports

    before = latest()
    server = guest(ofnet, "sv1", "server", "--port", 9301, ready="listening")
    client = guest(ofnet, "c2", "client", "write", f"{ofnet.host('sv1').IP()}:9301", "--total", 5_000_000)
    assert client.wait(20)
    server.stop()
    # c2's port on s1 received the 5 MB (plus headers); the other ports did not.
    assert wait_until(lambda: any(v - before.get(p, 0) >= 5_000_000 for p, v in latest().items()), 3), latest()


def test_controller_and_ovs_bridges_are_gone_after_the_run():
    with LabNetwork(NetworkSpec("single", args=[2], controller="lab")) as lab:
        record = RunRecord(**vars(lab.record))
        pid = lab.controller.proc.pid
        assert set(record.ovs_bridges) <= _ovs_bridges()
        assert any(info["role"] == "controller" for info in record.processes.values())
    assert leftovers(record) == []
    assert not set(record.ovs_bridges) & _ovs_bridges()
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)

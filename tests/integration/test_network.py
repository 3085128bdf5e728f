"""The foundation on real networks: data moves, counters are per host, sysctls are per host, nothing leaks."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab import sysctl as sysctls
from lab.network import sysctls as hostcfg
from lab.errors import LabError, SysctlError
from lab.network import LabNetwork, NetworkSpec, leftovers
from lab.runrecord import RunRecord, all_records

from .helpers import ask, counter, deltas, guest, lab_prompt, needs_machine_netns, snapshot, wait_until

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def three_hosts():
    spec = NetworkSpec("single", args=[3], host_sysctls={"h1": {"net.core.somaxconn": 64,
                                                                "net.ipv4.tcp_abort_on_overflow": 1}})
    with LabNetwork(spec, purpose="test three hosts") as lab:
        yield lab


def test_three_hosts_move_data(three_hosts):
    lab = three_hosts
    assert lab.net.pingAll(timeout=2) == 0
    server = guest(lab, "h1", "server", "--port", 9100, ready="listening")
    client = guest(lab, "h3", "client", "write", "10.0.0.1:9100", "--total", 5_000_000)
    assert client.wait(15)
    client.stop()
    assert wait_until(lambda: (server.summary() or {}).get("bytes") == 5_000_000 or
                      sum(e.get("got", 0) for e in server.events if e.get("event") == "read") >= 5_000_000, 10)
    server.stop()
    assert client.summary()["accepted"] == 5_000_000


def test_a_shell_printing_bytes_that_are_not_utf8_does_not_break_the_network(three_hosts):
    """Mininet decodes shell output as strict UTF-8: its controller check's telnet once printed an OpenFlow
    hello and the UnicodeDecodeError ended a whole library run. The lab's shells replace such bytes."""
    out = three_hosts.host("h1").cmd("printf 'a\\320\\377b\\n'")
    assert out.strip() == "a\ufffd\ufffdb", repr(out)
    assert three_hosts.host("h1").cmd("echo still here").strip() == "still here"


def test_counters_move_on_the_right_host(three_hosts):
    lab = three_hosts
    before = snapshot(lab, "h1", "h2", "h3")
    server = guest(lab, "h2", "server", "--port", 9101, ready="listening")
    client = guest(lab, "h3", "client", "connect", "10.0.0.2:9101", "--count", 3)
    assert client.wait(10)
    server.stop()
    d = deltas(lab, before)
    assert counter(d["h3"], "Tcp.ActiveOpens") == 3
    assert counter(d["h2"], "Tcp.PassiveOpens") == 3
    assert counter(d["h2"], "Tcp.ActiveOpens") == 0
    assert counter(d["h3"], "Tcp.PassiveOpens") == 0
    assert counter(d["h1"], "Tcp.ActiveOpens") == counter(d["h1"], "Tcp.PassiveOpens") == 0


def test_per_host_sysctl_only_on_that_host(three_hosts):
    lab = three_hosts
    assert lab.effective_sysctls["h1"]["net.core.somaxconn"] == "64"
    assert lab.effective_sysctls["h1"]["net.ipv4.tcp_abort_on_overflow"] == "1"
    assert lab.effective_sysctls["h2"]["net.core.somaxconn"] == "4096"
    assert lab.effective_sysctls["h2"]["net.ipv4.tcp_abort_on_overflow"] == "0"
    # And the kernel applies it: listen(1024) on h1 gets a backlog of 64, on h2 of 1024.
    s1 = guest(lab, "h1", "server", "--port", 9102, "--backlog", 1024, "--accept", "never", ready="listening")
    s2 = guest(lab, "h2", "server", "--port", 9102, "--backlog", 1024, "--accept", "never", ready="listening")
    assert s1.wait_event("listening", 1)["backlog"] == 64
    assert s2.wait_event("listening", 1)["backlog"] == 1024
    s1.stop(), s2.stop()
    with open("/proc/sys/net/ipv4/tcp_abort_on_overflow") as f:
        assert f.read().strip() == "0", "a per-host setting leaked into the root namespace"


@needs_machine_netns
def test_hosts_start_from_kernel_defaults_not_the_root_namespaces_values():
    # A new namespace copies tcp_rmem/tcp_wmem from the root namespace, whatever Mininet's fixLimits() or an
    # admin put there. Put a value in the root that no kernel ships, and see that a plain namespace inherits
    # it while tcplab's hosts hold the stock kernel's own values (scripts/vm-check.sh records those).
    path = Path("/proc/sys/net/ipv4/tcp_rmem")
    saved = path.read_text().strip()
    odd = "4096 111111 5555555"
    path.write_text(odd)
    try:
        plain = subprocess.run(["unshare", "-n", "cat", str(path)], capture_output=True, text=True, check=True)
        assert plain.stdout.split() == odd.split(), "a plain namespace no longer inherits the root's tcp_rmem"
        with LabNetwork(NetworkSpec("pair"), purpose="test host defaults") as lab:
            for host in lab.host_names():
                for key in ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"):
                    seen = hostcfg.run_in(lab.net[host], ["sysctl", "-n", key]).split()
                    assert seen == sysctls.HOST_DEFAULTS[key].split(), f"{host} {key} is {seen}"
    finally:
        path.write_text(saved)


def test_machine_wide_key_is_refused_before_building():
    spec = NetworkSpec("pair", host_sysctls={"h1": {"net.core.rmem_max": 1000000}})
    records = {r.run_id for r in all_records()}
    with pytest.raises(SysctlError, match="net.core.rmem_max: machine-wide"):
        LabNetwork(spec).start()
    assert {r.run_id for r in all_records()} == records, "nothing may be created for a refused spec"


def test_unknown_host_in_sysctls_is_refused():
    with pytest.raises(LabError, match="unknown host 'h9'"):
        LabNetwork(NetworkSpec("pair", host_sysctls={"h9": {"net.core.somaxconn": 1}})).start()


def test_machine_sysctls_unchanged_and_nothing_left_after_stop():
    before = hostcfg.read_machine_sysctls(sysctls.MACHINE_GUARDED)
    with LabNetwork(NetworkSpec("dumbbell", args=[2, 1, 50])) as lab:
        record = RunRecord(**vars(lab.record))
        assert len(record.switches) == 2 and record.root_interfaces
        assert all(s.startswith(record.run_id) for s in record.switches)
    assert leftovers(record) == []
    assert hostcfg.read_machine_sysctls(sysctls.MACHINE_GUARDED) == before


FIRST_RUN = textwrap.dedent("""
    import json, sys
    from lab.sysctl import MACHINE_GUARDED
    from lab.network import LabNetwork, NetworkSpec, read_machine_sysctls
    before = read_machine_sysctls(MACHINE_GUARDED)
    with LabNetwork(NetworkSpec("pair")):
        during = read_machine_sysctls(MACHINE_GUARDED)
    print(json.dumps({k: [before[k], during.get(k)] for k in before if during.get(k) != before[k]}))
""")


def test_the_first_network_of_a_process_never_touches_machine_sysctls():
    # Checked *during* the run, in a fresh process (Mininet runs fixLimits() once per process): a run that
    # changed them and put them back at stop() still breaks a second run started meanwhile, which would
    # snapshot the changed values and "restore" those.
    out = subprocess.run([sys.executable, "-c", FIRST_RUN], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{}", f"machine-wide sysctls changed while the run was up: {out.stdout}"


def test_nothing_left_after_an_exception_inside_the_run():
    with pytest.raises(RuntimeError):
        with LabNetwork(NetworkSpec("single", args=[2])) as lab:
            record = RunRecord(**vars(lab.record))
            guest(lab, "h1", "server", "--port", 9103, ready="listening")
            raise RuntimeError("boom")
    assert leftovers(record) == []
    assert not record.path.exists()


SCRIPT = textwrap.dedent("""
    import sys, time
    from lab.network import LabNetwork, NetworkSpec
    from lab.guests import GuestProcess
    with LabNetwork(NetworkSpec("single", args=[2])) as lab:
        GuestProcess("s", "h1", "server", ["--port", 9000]).start(lab).wait_event("listening", 5)
        print(lab.run_id, flush=True)
        time.sleep(60)
""")


def _start_script():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    assert run_id, "the lab script did not start"
    return proc, RunRecord.load(f"/run/tcplab/{run_id}.json")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_nothing_left_after_a_signal(sig):
    proc, record = _start_script()
    assert leftovers(record), "the run should have something to remove"
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert leftovers(record) == []
    assert not record.path.exists()


def test_cleanup_after_sigkill_removes_exactly_that_run():
    with LabNetwork(NetworkSpec("pair")) as alive:
        proc, record = _start_script()
        proc.kill()
        proc.communicate(timeout=10)
        assert leftovers(record), "SIGKILL leaves the run's processes and bridge behind"
        out = subprocess.run([sys.executable, "-m", "lab.cli", "cleanup"], cwd=ROOT, capture_output=True, text=True)
        assert record.run_id in out.stdout
        assert leftovers(record) == []
        # The live run was left alone.
        assert alive.net.pingAll(timeout=2) == 0
        assert alive.record.path.exists()


def test_two_runs_at_once_do_not_collide():
    procs = [subprocess.Popen([sys.executable, "-m", "lab.cli", "demo"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "Tcp.PassiveOpens" in out


def test_cli_session(tmp_path):
    with lab_prompt(tmp_path / "cli.log") as child:
        ask(child, "pingall", r"Results: 0% dropped")
        ask(child, "h1 iperf3 -s -1 &")
        ask(child, "h2 sleep 0.3; iperf3 -c 10.0.0.1 -t 1", "iperf Done")
        assert int(ask(child, "counters h2", r"Tcp\.ActiveOpens\s+(\d+)").group(1)) >= 1
        assert int(ask(child, "counters h1", r"Tcp\.PassiveOpens\s+(\d+)").group(1)) >= 1
        ask(child, "sysctl h1 net.core.somaxconn=64", "h1: net.core.somaxconn = 64")
        ask(child, "sysctl h2 net.core.rmem_max=1", "machine-wide")


def test_second_installer_run_changes_nothing():
    # The first run brings the venv up to date (the suite may run without scripts/test.sh before it); the
    # second must find everything done.
    subprocess.run(["bash", str(ROOT / "scripts/install.sh")], capture_output=True, text=True, timeout=600)
    out = subprocess.run(["bash", str(ROOT / "scripts/install.sh")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "apt packages already installed" in out.stdout
    assert "Open vSwitch daemons already running" in out.stdout
    assert "tcplab already installed" in out.stdout
    assert "installing" not in out.stdout.replace("already installed", "")


def test_vagrantfile_validates():
    if subprocess.run(["which", "vagrant"], capture_output=True).returncode != 0:
        pytest.fail("vagrant is not installed: scripts/test.sh installs it")
    out = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "VAGRANT_HOME": "/tmp/tcplab-vagrant-home"})
    assert out.returncode == 0, out.stdout + out.stderr

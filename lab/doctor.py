"""`tcplab doctor`: can this machine run the lab? Each check says OK, WARN or FAIL, and the fix."""
import importlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from shutil import which

from . import network, runrecord


@dataclass
class Check:
    name: str
    status: str    # OK, WARN, FAIL
    detail: str
    fix: str = ""


def check_root():
    if os.geteuid() == 0:
        return Check("root", "OK", "running as root")
    return Check("root", "FAIL", "not root: namespaces, bridges and sysctls need it", "run with sudo")


def check_mininet():
    try:
        mn = importlib.import_module("mininet.net")
        version = getattr(importlib.import_module("mininet.net"), "VERSION", "?")
    except ImportError:
        return Check("mininet", "FAIL", "this Python cannot import mininet",
                     "sudo scripts/install.sh (Debian's mininet package, seen by the venv on /usr/bin/python3)")
    if not which("mnexec"):
        return Check("mininet", "FAIL", "mnexec not on PATH", "apt install mininet")
    return Check("mininet", "OK", f"Mininet {version} from {Path(mn.__file__).parent}, mnexec at {which('mnexec')}")


def check_ovs():
    if not which("ovs-vsctl"):
        return Check("openvswitch", "WARN", "ovs-vsctl missing: OpenFlow scenarios disabled",
                     "apt install openvswitch-switch")
    try:
        proc = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True, text=True, timeout=6)
        ok = proc.returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if not ok:
        return Check("openvswitch", "WARN", "the OVS daemons are not running: OpenFlow scenarios disabled",
                     "/usr/share/openvswitch/scripts/ovs-ctl start (scripts/install.sh does this)")
    if network.ovs_kernel_module():
        return Check("openvswitch", "OK", "daemons running; kernel datapath (openvswitch module loaded)")
    return Check("openvswitch", "OK", "daemons running; no openvswitch kernel module: OpenFlow scenarios use "
                 "the userspace datapath (~0.7 Gbit/s, TX checksum offload turned off on hosts)")


def check_bridge():
    if not which("brctl"):
        return Check("linux bridge", "FAIL", "brctl missing (Mininet's LinuxBridge uses it)", "apt install bridge-utils")
    ok, err = network.probe_bridge()
    if not ok:
        return Check("linux bridge", "FAIL", f"cannot create a bridge: {err}", "load the bridge module (modprobe bridge)")
    detail = "bridges work (the default switch: kernel speed, no controller)"
    nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if nf.exists() and nf.read_text().strip() == "1" and _forward_policy() == "DROP":
        return Check("linux bridge", "WARN", detail + "; bridged traffic passes the root namespace's iptables "
                     "(br_netfilter): a FORWARD DROP policy there would cut lab traffic",
                     "sysctl net.bridge.bridge-nf-call-iptables=0, or allow forwarding on the lab's bridges")
    return Check("linux bridge", "OK", detail)


def _forward_policy():
    if not which("iptables"):
        return None
    proc = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("-P FORWARD"):
            return line.split()[-1]
    return None


def check_qdisc(kind, purpose):
    ok, err = network.probe_qdisc(kind)
    if ok:
        return Check(f"tc {kind}", "OK", f"available ({purpose})")
    return Check(f"tc {kind}", "FAIL", f"not available ({purpose}): {err}", "a kernel with sch_" + kind)


def check_netem():
    ok, err = network.probe_qdisc("netem")
    if ok:
        return Check("tc netem", "OK", "available: delay and loss shaping")
    return Check("tc netem", "WARN", "absent in this kernel: scenarios that declare delay or loss are skipped "
                 "with that reason (bandwidth shaping still works with htb/tbf)",
                 "a kernel with sch_netem (e.g. the Vagrant VM: vagrant up)")


def check_osken():
    try:
        importlib.import_module("os_ken.base.app_manager")
    except Exception as e:  # noqa: BLE001 (any import failure means the same thing here)
        return Check("os-ken", "WARN", f"cannot import os_ken ({type(e).__name__}: {e}): OpenFlow scenarios disabled",
                     "sudo scripts/install.sh (installs os-ken in the venv)")
    version = getattr(importlib.import_module("os_ken"), "__version__", "")
    return Check("os-ken", "OK", f"os_ken {version} importable (the Ryu API)".replace("  ", " "))


def check_leftovers():
    try:
        records, problems = runrecord.scan_records()
    except runrecord.LabError as e:        # the run directory is open to others
        return Check("leftovers", "FAIL", str(e))
    dead = [r.run_id for r in records if not r.owner_alive()]
    if problems:
        return Check("leftovers", "WARN", f"corrupt run records (skipped, never acted on): {'; '.join(problems)[:300]}",
                     "look at them and remove them by hand (tcplab cleanup --check lists them)")
    if dead:
        return Check("leftovers", "WARN", f"runs that died left state behind: {', '.join(dead)}", "sudo tcplab cleanup")
    return Check("leftovers", "OK", "no state left by earlier runs")


def run_checks():
    checks = [check_root(), check_mininet()]
    if checks[0].status == "FAIL":
        return checks
    checks += [check_ovs(), check_bridge(),
               check_qdisc("htb", "bandwidth shaping, 0.1 Mbit/s to 10 Gbit/s"), check_qdisc("tbf", "bandwidth shaping"),
               check_netem(), check_osken(), check_trace(), check_leftovers()]
    return checks


def check_trace():
    """The kernel event stream (bpftrace on tracepoints): why not, when not. Runs go on without it."""
    from .trace import check
    status, detail, fix = check()
    return Check("kernel events", status, detail, fix)


def can_run(checks):
    return all(c.status != "FAIL" for c in checks)

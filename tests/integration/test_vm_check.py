"""A second kernel: scripts/vm-check.sh --subset boots Debian 12's stock kernel (6.1) under QEMU and runs
the lab there. The code paths this machine's kernel cannot run (netem delay, the OVS kernel datapath, with
and without the lab's OpenFlow controller) run on a kernel that has them; the results come back.

About 6 minutes with a cached root (the installer 141-203 s under emulation, bpftrace's compile about 65 s,
the five scenarios about 45 s), 2 more the first time (debootstrap and wheels). scripts/test.sh installs
debootstrap and QEMU.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ("rtt-window", "zero-window", "listen-overflow", "zero-window-ovs", "lost-synack-ovs-kernel")

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def vm_run(tmp_path_factory):
    if os.environ.get("TCPLAB_PLATFORM_CHECK") == "1":
        pytest.skip("inside scripts/platform-check.sh's root, which has no network for debootstrap by design; "
                    "the VM check runs on the machine itself (scripts/test.sh there)")
    out = tmp_path_factory.mktemp("vm") / "results"
    proc = subprocess.run(["bash", "scripts/vm-check.sh", "--subset", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=3000)
    info_file = out / "vm-info.json"
    assert info_file.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, out, json.loads(info_file.read_text())


def test_the_vm_runs_debian_12s_stock_kernel_with_netem_and_ovs(vm_run):
    proc, out, info = vm_run
    assert info["kernel"].startswith("6.1."), info["kernel"]
    assert info["congestion_control"] == "cubic"
    # (tun loads only for OVS's userspace datapath, which the subset does not use)
    assert {"openvswitch", "sch_netem"} <= set(info["modules"]), info["modules"]
    assert info["install_rc"] == 0, (out / "install.log").read_text()[-2000:]
    assert "FAIL" not in (out / "doctor.txt").read_text()


def test_hosts_get_a_stock_kernels_own_buffer_defaults(vm_run):
    """tcplab gives every host fixed buffer limits (lab/sysctl.py HOST_DEFAULTS): these are what a stock
    distribution kernel (6.1, freshly booted, nothing changed) has of its own; 6.16 and later raised
    tcp_rmem's max to 32 MB, which is why they are fixed rather than inherited."""
    from lab.sysctl import HOST_DEFAULTS
    proc, out, info = vm_run
    for key, value in HOST_DEFAULTS.items():
        assert info["sysctls"][key] == value, (key, info["sysctls"])


def _results(out):
    return {n: json.loads((out / "results" / n / "results.json").read_text()) for n in SUBSET}


def _failed_checks(results):
    """One line per check that failed: what the kernel showed and what was expected (the run's tail alone
    cut these off when CI failed)."""
    return "\n".join(f"{name}: {e['check']}: observed {e.get('observed')!r}, expected {e.get('expected')}"
                     f" ({e.get('message', '')})"
                     for name, r in results.items() for e in r.get("expectations") or []
                     if not e.get("passed") and not e.get("skipped"))


def test_every_subset_scenario_passes_in_the_vm(vm_run):
    proc, out, info = vm_run
    results = _results(out)
    status = {n: r["status"] for n, r in results.items()}
    assert status == {n: "PASS" for n in SUBSET}, _failed_checks(results) + "\n" + (out / "run.txt").read_text()[-3000:]
    assert proc.returncode == 0 and info["run_rc"] == 0


def test_kernel_events_are_judged_on_the_second_kernel(vm_run):
    """The kernel's event stream (bpftrace on tracepoints) works on 6.1 too. Debian's systemd mounts tracefs
    there (this machine has none mounted); bpftrace takes about 60 s to compile the program under emulation;
    6.1's tcp_probe has no socket, so there are no per-segment samples (said in trace.limits). Kernel checks
    are judged, except those marked `since` a newer kernel, which say so."""
    _, out, _ = vm_run
    results = _results(out)
    unavailable = {n: r["trace"].get("reason") for n, r in results.items() if not r["trace"].get("available")}
    assert not unavailable, (unavailable, (out / "tracefs.txt").read_text(), (out / "bpftrace-timing.txt").read_text())
    assert all("tcp_probe" in " ".join(r["trace"].get("limits") or []) for r in results.values())
    kernel_checks = [e for r in results.values() for e in r["expectations"] if ": kernel." in e["check"]]
    judged = [e for e in kernel_checks if not e.get("skipped")]
    assert len(judged) >= 4 and all(e["passed"] for e in judged), kernel_checks
    assert all("older than 6.15" in e["skipped"] for e in kernel_checks if e.get("skipped")), kernel_checks


def test_netem_delay_shows_in_tcp_info_rtt(vm_run):
    _, out, _ = vm_run
    result = json.loads((out / "results/rtt-window/results.json").read_text())
    rtts = [s["rtt"] for s in result["samples"]["h2"] if s.get("rtt") is not None]
    assert rtts and 95 <= min(rtts) <= 200, rtts       # 2 x 50 ms of netem delay, measured by the kernel


def test_ovs_bridges_ran_on_the_kernel_datapath(vm_run):
    _, out, _ = vm_run
    log = (out / "ovs-vswitchd.log").read_text()
    # The kernel datapath is "system@ovs-system"; the userspace one would be "netdev@ovs-netdev".
    assert "system@ovs-system" in log
    assert "netdev@ovs-netdev" not in log

"""Probes for `tcplab doctor` and for skipping scenarios: each runs in a throwaway network namespace
(`unshare -n`) that the kernel removes with its process, so nothing outlives the probe."""
import subprocess
from pathlib import Path


def ovs_running():
    """Whether the Open vSwitch daemons answer (Mininet would otherwise print and exit())."""
    try:
        return subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True, timeout=6).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


OVS_FIX = "start them with scripts/install.sh (or /usr/share/openvswitch/scripts/ovs-ctl start)"


def ovs_kernel_module():
    return Path("/sys/module/openvswitch").exists()


def _in_throwaway_netns(script, quiet=False):
    """Run SCRIPT in a new network namespace; (ok, message). QUIET: any output (tc's warnings, such as
    htb's "quantum of class ... is big") counts as a failure too, as it does for the lab's shaping."""
    proc = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=15)
    said = (proc.stderr or proc.stdout).strip()
    return proc.returncode == 0 and not (quiet and said), said


def probe_bridge():
    return _in_throwaway_netns("ip link add tlprobe type bridge && ip link set tlprobe up")


def probe_qdisc(kind):
    """Whether the kernel accepts qdisc KIND (htb, tbf, netem) on a veth pair. htb is tried with the lab's
    own commands at the lowest and highest rates it supports (0.1 Mbit/s and 10 Gbit/s), in silence."""
    from .lifecycle import shape_commands      # late: lifecycle imports this module
    htb = " && ".join(shape_commands("tlpa", bw=0.1) + shape_commands("tlpb", bw=10000))
    commands = {
        "htb": htb,
        "tbf": "tc qdisc add dev tlpa root tbf rate 10mbit burst 15k latency 50ms",
        "netem": "tc qdisc add dev tlpa root netem delay 1ms loss 1%",
    }
    return _in_throwaway_netns("ip link add tlpa type veth peer name tlpb && ip link set tlpa up && "
                               f"ip link set tlpb up && {commands[kind]}",
                               quiet=kind == "htb")


_netem = None


def netem_available():
    """Whether this kernel has the netem qdisc (delay, loss). Tried in a throwaway namespace."""
    global _netem
    if _netem is None:
        try:
            _netem = probe_qdisc("netem")[0]
        except (OSError, subprocess.TimeoutExpired):
            _netem = False
    return _netem

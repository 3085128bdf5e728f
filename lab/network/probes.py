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


def _in_throwaway_netns(script):
    proc = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=15)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def probe_bridge():
    return _in_throwaway_netns("ip link add tlprobe type bridge && ip link set tlprobe up")


def probe_qdisc(kind):
    """Whether the kernel accepts qdisc KIND (htb, tbf, netem) on a veth pair."""
    commands = {
        "htb": "tc qdisc add dev tlpa root handle 5: htb default 1 && "
               "tc class add dev tlpa parent 5: classid 5:1 htb rate 10mbit",
        "tbf": "tc qdisc add dev tlpa root tbf rate 10mbit burst 15k latency 50ms",
        "netem": "tc qdisc add dev tlpa root netem delay 1ms loss 1%",
    }
    return _in_throwaway_netns(f"ip link add tlpa type veth peer name tlpb && ip link set tlpa up && {commands[kind]}")


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

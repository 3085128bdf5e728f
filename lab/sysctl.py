"""Sysctls as data: which keys belong to a host (its network namespace), their normal form, and what every
host starts from. Pure: no /proc access here (lab/network/ writes and reads them; lab/library.py looks up
which keys this kernel has and passes them in).

The walk of one setting: a scenario's `hosts.h1.sysctl` (YAML) -> checked here once, at load ->
Scenario.hosts[h1].sysctl (the model) -> written and read back by lab/network/ -> results.json's
`hosts.h1.sysctls` (every key the scenario set, plus RECORDED_KEYS).
"""
import difflib
import re

from .errors import SysctlError

# Checked first: these look per-namespace by prefix but are machine-wide (changing them in a "host" would
# change every host and the machine).
MACHINE_WIDE = {
    "net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default",
    "net.core.optmem_max", "net.core.netdev_max_backlog", "net.ipv4.tcp_mem", "net.ipv4.udp_mem",
    "net.ipv4.tcp_max_orphans", "net.ipv4.tcp_available_congestion_control",
    "net.ipv4.tcp_allowed_congestion_control",
    "net.ipv4.neigh.default.gc_thresh1", "net.ipv4.neigh.default.gc_thresh2",
    "net.ipv4.neigh.default.gc_thresh3", "kernel.pty.max",
}
PER_HOST_PREFIXES = ("net.ipv4.tcp_", "net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.icmp_")
PER_HOST_KEYS = {
    "net.core.somaxconn", "net.ipv4.ip_local_port_range", "net.ipv4.ip_forward",
    "net.ipv4.ip_default_ttl", "net.ipv4.ip_no_pmtu_disc", "net.unix.max_dgram_qlen",
}
PER_HOST_HELP = "net.core.somaxconn, net.ipv4.tcp_*, net.ipv4.ip_local_port_range, net.ipv4.conf.*"
KEY_PATTERN = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+){1,6}")
VALUE_PATTERN = re.compile(r"[A-Za-z0-9_ .:,-]{0,120}")

CONGESTION = "net.ipv4.tcp_congestion_control"
# Congestion-control algorithms Linux ships (tcp_*.ko or built in); a name outside this list is a typo.
KNOWN_CONGESTION = ("reno", "cubic", "bbr", "bic", "cdg", "dctcp", "highspeed", "htcp", "hybla", "illinois",
                    "lp", "nv", "scalable", "vegas", "veno", "westwood", "yeah")

# What every host starts from, whatever the machine's root namespace holds: new namespaces copy
# tcp_rmem/tcp_wmem from the root (which Mininet's fixLimits() or the machine's image may have changed).
# These are the kernel's own defaults (tests read them from a namespace made outside the lab).
HOST_DEFAULTS = {
    "net.ipv4.tcp_rmem": "4096 131072 6291456",
    "net.ipv4.tcp_wmem": "4096 16384 4194304",
}
# The congestion control every host's guests use unless the scenario says otherwise: the kernel's own default
# (most distributions and the Vagrant VM run it; this machine's root runs bbr, which new namespaces copy).
# It is not a plain sysctl: a network namespace may only make an algorithm its default if the machine allows
# it (tcp_allowed_congestion_control, machine-wide), so the guests also set it on each socket (TCP_CONGESTION,
# which root may do for any algorithm the kernel has). See lab/runner.py.
DEFAULT_CONGESTION = "cubic"

# What results.json records for every host (plus every key the scenario sets).
RECORDED_KEYS = (
    "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_syn_retries", CONGESTION,
)

# Machine-wide limits every host shares, recorded with each run: rmem_max/wmem_max cap SO_RCVBUF/SO_SNDBUF.
MACHINE_RECORDED = ("net.core.rmem_max", "net.core.wmem_max", "net.ipv4.tcp_mem", "net.core.netdev_max_backlog",
                    CONGESTION, "net.ipv4.tcp_available_congestion_control")

# Root-namespace settings Mininet's fixLimits() rewrites, and a few the lab depends on: checked after runs.
MACHINE_GUARDED = (
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.rmem_max", "net.core.wmem_max",
    "net.core.netdev_max_backlog", "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2", "net.ipv4.neigh.default.gc_thresh3",
    "net.ipv4.route.max_size", "kernel.pty.max", "net.core.somaxconn", "net.ipv4.tcp_syncookies",
    "net.ipv4.ip_forward", CONGESTION,
    "net.ipv4.tcp_allowed_congestion_control",     # writing a default congestion control extends it
)


def scope(key):
    """'host' or 'machine' for a sysctl key; raises SysctlError for a key the lab does not know."""
    if key in MACHINE_WIDE:
        return "machine"
    if key in PER_HOST_KEYS or key.startswith(PER_HOST_PREFIXES):
        return "host"
    raise SysctlError(f"{key}: not a sysctl the lab can set per host (per-host keys: {PER_HOST_HELP})")


def check_per_host(key, known=None):
    """Raise SysctlError when KEY cannot be set on one host alone, or (with KNOWN, this kernel's per-host keys)
    when the kernel has no such key; the message suggests the closest known keys."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise SysctlError(f"{key!r}: not a sysctl name (like net.ipv4.tcp_syncookies)")
    if scope(key) == "machine":
        raise SysctlError(f"{key}: machine-wide; it cannot be set per host (per-host keys: {PER_HOST_HELP})")
    if known is not None and _generic(key) not in known:
        close = difflib.get_close_matches(_generic(key), known, n=3, cutoff=0.75)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SysctlError(f"{key}: this kernel has no such sysctl for a host{hint} (a key only the machine has, "
                          "like net.ipv4.icmp_msgs_per_sec before 6.12, cannot be set per host either)")


def _generic(key):
    """net.ipv4.conf.h1-eth0.rp_filter -> net.ipv4.conf.all.rp_filter: interface names differ per host."""
    parts = key.split(".")
    if len(parts) == 5 and parts[1] in ("ipv4", "ipv6") and parts[2] == "conf":
        parts[3] = "all"
    return ".".join(parts)


def normalize(value):
    """Sysctl values compare as the kernel prints them: whitespace-separated fields, single spaces."""
    return " ".join(str(value).split())


def check_value(key, value, available_congestion=None):
    """A value as text in its normal form; SysctlError for what the kernel could never take. Congestion
    control: a name outside KNOWN_CONGESTION is a typo (with a suggestion)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SysctlError(f"{key}: expected a whole number or text, got {value!r}")
    if isinstance(value, int) and not -(2 ** 63) <= value < 2 ** 63:
        raise SysctlError(f"{key}: {value} is out of range")
    text = normalize(value)
    if not VALUE_PATTERN.fullmatch(text):
        raise SysctlError(f"{key}: {value!r} is not a sysctl value (numbers, words, spaces; at most 120 characters)")
    if key == CONGESTION and text not in KNOWN_CONGESTION:
        close = difflib.get_close_matches(text, KNOWN_CONGESTION, n=2)
        raise SysctlError(f"{key}: {text!r} is not a congestion control algorithm"
                          + (f" (did you mean {', '.join(close)}?)" if close else f" ({', '.join(KNOWN_CONGESTION)})"))
    return text


def host_settings(defaults, wanted_all, wanted_host):
    """The settings one host gets: the defaults, then settings for every host, then its own."""
    return {**defaults, **(wanted_all or {}), **(wanted_host or {})}

"""Per-host tuning: which sysctls belong to a host (its network namespace), and setting them there.

A key is per host when the kernel keeps it per network namespace (`net.core.somaxconn`, most
`net.ipv4.tcp_*`); machine-wide keys (`net.core.rmem_max`, `tcp_mem`...) fail with EINVAL or do not
exist inside a host, and changing them would change every host and the machine itself.
"""
import subprocess

from .errors import HostCommandError, SysctlError

# Checked first: these look per-namespace by prefix but are machine-wide.
MACHINE_WIDE = {
    "net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default",
    "net.core.optmem_max", "net.core.netdev_max_backlog", "net.ipv4.tcp_mem", "net.ipv4.udp_mem",
    "net.ipv4.tcp_max_orphans", "net.ipv4.tcp_available_congestion_control",
    "net.ipv4.neigh.default.gc_thresh1", "net.ipv4.neigh.default.gc_thresh2",
    "net.ipv4.neigh.default.gc_thresh3", "kernel.pty.max",
}
PER_HOST_PREFIXES = ("net.ipv4.tcp_", "net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.icmp_")
PER_HOST_KEYS = {
    "net.core.somaxconn", "net.ipv4.ip_local_port_range", "net.ipv4.ip_forward",
    "net.ipv4.ip_default_ttl", "net.ipv4.ip_no_pmtu_disc", "net.unix.max_dgram_qlen",
}
PER_HOST_HELP = "net.core.somaxconn, net.ipv4.tcp_*, net.ipv4.ip_local_port_range, net.ipv4.conf.*"

# The kernel's own defaults for a fresh namespace on a machine with enough memory. New namespaces
# copy tcp_rmem/tcp_wmem from the root namespace (which Mininet's fixLimits() or the machine's
# image may have changed), so every host is set to these unless a scenario asks otherwise.
KERNEL_DEFAULTS = {
    "net.ipv4.tcp_rmem": "4096 131072 6291456",
    "net.ipv4.tcp_wmem": "4096 16384 4194304",
}

# What results.json records for each host: the settings the lessons depend on.
RECORDED_KEYS = (
    "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_congestion_control",
)


def scope(key):
    """'host' or 'machine' for a sysctl key; raises SysctlError for a key the lab does not know."""
    if key in MACHINE_WIDE:
        return "machine"
    if key in PER_HOST_KEYS or key.startswith(PER_HOST_PREFIXES):
        return "host"
    raise SysctlError(f"{key}: not a sysctl the lab can set per host (per-host keys: {PER_HOST_HELP})")


def check_per_host(key):
    """Raise SysctlError when KEY cannot be set on one host alone."""
    if scope(key) == "machine":
        raise SysctlError(
            f"{key}: machine-wide; it cannot be set per host (per-host keys: {PER_HOST_HELP})")


def normalize(value):
    """Sysctl values compare as the kernel prints them: whitespace-separated fields, single spaces."""
    return " ".join(str(value).split())


def host_run(host, argv, timeout=10):
    """Run ARGV inside HOST's namespaces (mnexec -a PID), return stdout; raise HostCommandError."""
    proc = subprocess.run(["mnexec", "-a", str(host.pid), *argv], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise HostCommandError(host.name, " ".join(argv), proc.returncode, proc.stderr)
    return proc.stdout


def set_host_sysctls(host, settings):
    """Write {key: value} inside HOST and verify that the kernel kept each value."""
    if not settings:
        return
    for key in settings:
        check_per_host(key)
    args = [f"{key}={normalize(value)}" for key, value in settings.items()]
    try:
        host_run(host, ["sysctl", "-q", "-w", *args])
    except HostCommandError as e:
        raise SysctlError(f"{host.name}: sysctl refused {' '.join(args)}: {e.stderr.strip()}") from None
    got = read_host_sysctls(host, settings)
    for key, value in settings.items():
        if got[key] != normalize(value):
            raise SysctlError(f"{host.name}: {key}={normalize(value)} did not take effect (kernel has {got[key]})")


def read_host_sysctls(host, keys=RECORDED_KEYS):
    """{key: value} as HOST's kernel reports them."""
    out = host_run(host, ["sysctl", *keys])
    values = {}
    for line in out.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = normalize(value)
    return values


def read_machine_sysctls(keys):
    """{key: value} in the root namespace, read from /proc/sys (for the unchanged-after-run check)."""
    values = {}
    for key in keys:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                values[key] = normalize(f.read())
        except FileNotFoundError:
            continue
    return values


# The root-namespace settings Mininet's fixLimits() rewrites, and a few the lab depends on:
# checked unchanged after every run.
MACHINE_GUARDED = (
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.rmem_max", "net.core.wmem_max",
    "net.core.netdev_max_backlog", "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2", "net.ipv4.neigh.default.gc_thresh3",
    "net.ipv4.route.max_size", "kernel.pty.max", "net.core.somaxconn", "net.ipv4.tcp_syncookies",
    "net.ipv4.ip_forward",
)

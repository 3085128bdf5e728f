"""Per-host tuning: which sysctls belong to a host (its network namespace), and setting them there.

A key is per host when the kernel keeps it per network namespace (`net.core.somaxconn`, most
`net.ipv4.tcp_*`); machine-wide keys (`net.core.rmem_max`, `tcp_mem`...) fail with EINVAL or do not
exist inside a host, and changing them would change every host and the machine itself.
"""
import ctypes
import os
import subprocess
import threading

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


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _proc_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def tune_in_namespaces(jobs):
    """For each (name, pid, {key: value} to write, keys to read): write then read sysctls in the network
    namespace of PID. Returns {name: {key: value}}; raises SysctlError naming the host, key and value.

    /proc/sys/net shows the namespace of the *thread* that opens it, and setns() moves only the calling
    thread: one short-lived thread visits every host in turn, with no process spawned per host (200 hosts
    cost milliseconds, not the seconds of 400 `sysctl` processes).
    """
    results, errors = {}, []

    def visit():
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            for name, pid, writes, reads in jobs:
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
                try:
                    _setns(fd)
                    for key, value in writes.items():
                        try:
                            with open(_proc_path(key), "w") as f:
                                f.write(normalize(value))
                        except OSError as e:
                            raise SysctlError(f"{name}: {key}={normalize(value)}: the kernel refused it "
                                              f"({e.strerror})") from None
                    values = {}
                    for key in list(reads) + [k for k in writes if k not in reads]:
                        try:
                            with open(_proc_path(key)) as f:
                                values[key] = normalize(f.read())
                        except FileNotFoundError:
                            continue
                    for key, value in writes.items():
                        if values.get(key) != normalize(value):
                            raise SysctlError(f"{name}: {key}={normalize(value)} did not take effect "
                                              f"(the kernel has {values.get(key)})")
                    results[name] = {k: values[k] for k in reads if k in values}
                finally:
                    os.close(fd)
        except (SysctlError, OSError) as e:
            errors.append(e)
        finally:
            _setns(home)
            os.close(home)

    worker = threading.Thread(target=visit, name="tcplab-sysctl")
    worker.start()
    worker.join()
    if errors:
        raise errors[0] if isinstance(errors[0], SysctlError) else SysctlError(str(errors[0]))
    return results


def set_host_sysctls(host, settings):
    """Write {key: value} inside HOST and verify that the kernel kept each value."""
    for key in settings:
        check_per_host(key)
    tune_in_namespaces([(host.name, host.pid, settings, ())])


def read_host_sysctls(host, keys=RECORDED_KEYS):
    """{key: value} as HOST's kernel reports them."""
    return tune_in_namespaces([(host.name, host.pid, {}, keys)])[host.name]


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


# Machine-wide limits every host shares, recorded with each run: rmem_max/wmem_max cap SO_RCVBUF/SO_SNDBUF.
MACHINE_RECORDED = ("net.core.rmem_max", "net.core.wmem_max", "net.ipv4.tcp_mem", "net.core.netdev_max_backlog")

# The root-namespace settings Mininet's fixLimits() rewrites, and a few the lab depends on:
# checked unchanged after every run.
MACHINE_GUARDED = (
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.rmem_max", "net.core.wmem_max",
    "net.core.netdev_max_backlog", "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2", "net.ipv4.neigh.default.gc_thresh3",
    "net.ipv4.route.max_size", "kernel.pty.max", "net.core.somaxconn", "net.ipv4.tcp_syncookies",
    "net.ipv4.ip_forward",
)

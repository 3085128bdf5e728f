"""Per-host sysctls and commands, applied to a running network: the network room's half of the sysctl walk.

lab/sysctl.py (pure) says which keys belong to a host and normalises values, checked once when a scenario
loads; this module writes and reads them in each host's network namespace (setns() from one thread, no
process per host), and runs a command in a node: the one checked way (`run_in`), which returns stdout and
raises with the node, the command and its stderr when the command fails.
"""
import ctypes
import os
import subprocess
import threading

from ..errors import HostCommandError, SysctlError
from ..sysctl import RECORDED_KEYS, check_per_host, normalize


def run_in(node, argv, timeout=10):
    """Run ARGV inside NODE's namespaces (mnexec -a PID: a host, or a switch in the root namespace), return its
    stdout; raise HostCommandError naming the node, the command, its status and stderr."""
    proc = subprocess.run(["mnexec", "-a", str(node.pid), *argv], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise HostCommandError(node.name, " ".join(argv), proc.returncode, proc.stderr)
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
                    # every key asked for, and every key written: a scenario's own settings are recorded too
                    results[name] = {k: values[k] for k in list(reads) + list(writes) if k in values}
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


def in_machine_netns():
    """True when this process is root in the machine's own network namespace: the one every new namespace
    copies its defaults from (tcp_rmem, the congestion control), and the only one where the machine-wide
    keys (tcp_mem, the neighbour table limits, the allowed congestion controls) are shown and writable.
    False in a namespace of its own, as scripts/platform-check.sh runs the suite."""
    return os.access("/proc/sys/net/ipv4/tcp_allowed_congestion_control", os.W_OK)

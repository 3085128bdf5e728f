"""Removing what a run created, by its (validated) run record.

- Processes: each recorded PID is signalled through a pidfd, and only after checking, on that pidfd, that
  it is still the recorded process (same start time) and that it carries the run's marker in its
  environment (TCPLAB_RUN=<run id>, set by the lab on everything it starts): a PID that was reused, or a
  record naming someone else's process, is refused and reported. A host owns its network namespace:
  every process inside it is the run's, and killing them all destroys the namespace, with its veth pairs,
  in one batch in the kernel (deleting interfaces one by one costs ~10-20 ms each).
- Interfaces: only what does not go by itself is deleted (bridges, OVS bridges, switch-to-switch veths),
  in one `ip -batch`; the root ends of host links vanish with their namespaces (waited for, bounded).
- Machine sysctls: only a value the run itself could have written (record.machine_run_values) is put
  back, and only while the machine still holds it; any other difference is reported and left.
"""
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from shutil import which

from .. import sysctl as sysctls
from . import sysctls as kernel
from .. import runrecord
from ..runrecord import process_start_time, same_process, scan_records

log = logging.getLogger("tcplab")
MARKER = "TCPLAB_RUN"
STALL_S = 0.3          # no root interface vanished for this long: the rest stays unless deleted

# Mininet's fixLimits() (mininet/util.py, 2.3.0): the machine-wide values a Mininet network may write.
# Integer limits are only ever raised (written when the current value is lower); tcp_rmem/tcp_wmem always.
MININET_LIMITS = {
    "net.core.wmem_max": 16777216, "net.core.rmem_max": 16777216,
    "net.ipv4.tcp_rmem": "10240 87380 16777216", "net.ipv4.tcp_wmem": "10240 87380 16777216",
    "net.core.netdev_max_backlog": 5000, "net.ipv4.neigh.default.gc_thresh1": 4096,
    "net.ipv4.neigh.default.gc_thresh2": 8192, "net.ipv4.neigh.default.gc_thresh3": 16384,
    "net.ipv4.route.max_size": 32768, "kernel.pty.max": 20000,
}


def run_values(before):
    """What a run could write over BEFORE (guarded key -> value): Mininet's limits, where it would write."""
    values = {}
    for key, limit in MININET_LIMITS.items():
        if key not in before:
            continue
        if isinstance(limit, int):
            if int(before[key].split()[0]) < limit:
                values[key] = str(limit)
        elif sysctls.normalize(limit) != before[key]:
            values[key] = sysctls.normalize(limit)
    return values


def _netns_inode(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _run_processes(inodes, run_id):
    """{pid: start} of every process inside the namespaces INODES or carrying RUN_ID's marker in its
    environment (a shell spawned just before a SIGKILL, not yet journaled), in one pass over /proc."""
    marker = f"{MARKER}={run_id}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        if _netns_inode(entry) in inodes or _environ_has(entry, marker):
            start = process_start_time(entry)
            if start is not None:
                found[int(entry)] = start
    return found


def _environ_has(pid, marker):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    return marker in env and marker in env.split(b"\0")


def _has_marker(pid, run_id):
    return _environ_has(pid, f"{MARKER}={run_id}".encode())


def _signal(pid, start, sig=signal.SIGKILL, check=None):
    """Signal PID through a pidfd, once the pidfd's process is known to be the one recorded (START, and
    CHECK(pid) when given): a PID reused between the check and the kill can never be hit. True if sent."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        if process_start_time(pid) != start or (check and not check(pid)):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def _wait_gone(processes, timeout):
    """Wait until every {pid: start} is gone (SIGKILL is delivered asynchronously), reaping our children."""
    deadline = time.monotonic() + timeout
    while processes and time.monotonic() < deadline:
        for pid in list(processes):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not same_process(pid, processes[pid]):
                del processes[pid]
        if processes:
            time.sleep(0.005)
    return processes


def kill_processes(record):
    """SIGKILL the run's recorded processes and everything inside its hosts' namespaces; wait until they
    are gone. Returns descriptions of recorded processes refused (not the run's)."""
    # Namespaces that are never a host's: this process's own and PID 1's (when readable; /proc/1/ns may be
    # closed to us, and then None must not make every namespace look like a host's). Only a namespace that
    # is neither is swept.
    shared = {_netns_inode("self"), _netns_inode(1)} - {None}
    if not shared:
        raise OSError("cannot read this process's own network namespace: nothing is swept")
    refused, hosts, killed = [], {}, {}
    for pid_text, info in record.processes.items():
        pid, start = int(pid_text), info["start"]
        if not same_process(pid, start):
            continue
        if not _has_marker(pid, record.run_id):
            refused.append(f"process {pid} ({info['role']}): not started by run {record.run_id} "
                           f"(no {MARKER} marker); left alone")
            continue
        inode = _netns_inode(pid)
        # A host owns its namespace: everything inside it is the run's (guests, shells' children).
        if info["role"].startswith("host") and inode is not None and inode not in shared:
            hosts[inode] = (pid, start)
        elif _signal(pid, start, check=lambda p: _has_marker(p, record.run_id)):
            killed[pid] = start
    for pid, start in _run_processes(set(hosts), record.run_id).items():
        if pid not in killed and pid != os.getpid() and _signal(
                pid, start, check=lambda p: _netns_inode(p) in hosts or _has_marker(p, record.run_id)):
            killed[pid] = start
    left = _wait_gone(killed, timeout=10)
    refused += [f"process {pid}: still running 10 s after SIGKILL" for pid in left]
    return refused


def _link_exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def _root_links():
    """{name: (ifindex, iflink)} for every interface of the root namespace (a veth's iflink is its peer)."""
    links = {}
    for name in os.listdir("/sys/class/net"):
        try:
            links[name] = (int(Path(f"/sys/class/net/{name}/ifindex").read_text()),
                           int(Path(f"/sys/class/net/{name}/iflink").read_text()))
        except (OSError, ValueError):
            continue
    return links


def _peers_in_root(names):
    """Those of NAMES that are veths whose other end is in the root namespace too (switch-to-switch links)."""
    links = _root_links()
    by_index = {index: iflink for index, iflink in links.values()}
    found = []
    for name in names:
        if name in links:
            index, peer = links[name]
            if peer != index and by_index.get(peer) == index:
                found.append(name)
    return found


def ip_batch(commands, timeout=60):
    """Run `ip -batch -` with COMMANDS (one process for all); returns stderr ('' when all went well)."""
    if not commands:
        return ""
    proc = subprocess.run(["ip", "-force", "-batch", "-"], input="".join(c + "\n" for c in commands),
                          capture_output=True, text=True, timeout=timeout)
    return proc.stderr.strip() if proc.returncode else ""


def remove_ovs_bridges(record):
    """Delete the run's OVS bridges that exist, in one ovs-vsctl call."""
    if record.ovs_bridges and which("ovs-vsctl"):
        present = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True,
                                 timeout=15).stdout.split()
        args = []
        for bridge in record.ovs_bridges:
            if bridge in present:
                args += ["--", "--if-exists", "del-br", bridge]
        if args:
            subprocess.run(["ovs-vsctl", "--timeout=10", *args[1:]], capture_output=True, timeout=30)


def remove_interfaces(record, wait=5.0):
    """Delete the run's bridges and switch-to-switch links; wait for host links to go with their
    namespaces; delete whatever is still there after WAIT seconds. Returns what could not be removed."""
    remove_ovs_bridges(record)
    now = [n for n in dict.fromkeys(record.switches + record.root_interfaces) if _link_exists(n)]
    ip_batch([f"link del dev {n}" for n in now if n in record.switches] +
             [f"link del dev {n}" for n in _peers_in_root(n for n in now if n not in record.switches)])
    # A namespace outlives its processes while it still holds sockets (a killed sender's TCP orphans keep
    # retransmitting for minutes): its veth then stays. Wait while the kernel is making progress, then
    # delete what is left (deleting either end of a veth pair removes both).
    rest = [n for n in record.root_interfaces if _link_exists(n)]
    deadline = progress = time.monotonic()
    deadline += wait
    while rest and time.monotonic() < deadline and time.monotonic() - progress < STALL_S:
        time.sleep(0.005)
        now = [n for n in rest if _link_exists(n)]
        if len(now) < len(rest):
            progress = time.monotonic()
        rest = now
    ip_batch([f"link del dev {n}" for n in rest])
    return [n for n in record.switches + record.root_interfaces if _link_exists(n)]


def restore_machine_sysctls(before, run_vals=None):
    """Put back a guarded machine sysctl only where it still holds a value the run itself could have
    written (RUN_VALS); report every other difference from BEFORE and leave it (someone else's change).
    Returns {"restored": {key: (was, now)}, "left": {key: (before, now)}}."""
    run_vals = run_vals or {}
    now = kernel.read_machine_sysctls(before)
    restored, left = {}, {}
    for key, value in before.items():
        if key not in now or now[key] == value:
            continue
        if run_vals.get(key) == now[key] and key in sysctls.MACHINE_GUARDED:
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
            restored[key] = (now[key], value)
        else:
            left[key] = (value, now[key])
    for key, (was, value) in left.items():
        log.warning("machine sysctl %s changed during the run (was %s, now %s), not by it: left as it is",
                    key, was, value)
    return {"restored": restored, "left": left}


def remove_run(record):
    """Remove everything RECORD names that still exists; settle the machine's sysctls; drop the run's files.
    Returns {"refused": [...], "interfaces_left": [...], "sysctls": {"restored", "left"}}."""
    refused = kill_processes(record)
    left = remove_interfaces(record)
    sysctls = restore_machine_sysctls(record.machine_sysctls, record.machine_run_values)
    record.remove()
    return {"refused": refused, "interfaces_left": left, "sysctls": sysctls}


def leftovers(record):
    """What of RECORD still exists (for tests and `tcplab cleanup --check`): a list of descriptions."""
    found = [f"process {pid} ({info['role']})" for pid, info in record.processes.items()
             if same_process(int(pid), info["start"]) and _has_marker(int(pid), record.run_id)]
    found += [f"interface {n}" for n in dict.fromkeys(record.root_interfaces + record.switches) if _link_exists(n)]
    return found


class CleanupResult(list):
    """The run ids removed (a list, as before), with what was skipped and reported on the side."""

    def __init__(self, removed=(), problems=(), reports=None):
        super().__init__(removed)
        self.problems = list(problems)     # corrupt records: '<file>: <why>' (skipped, never acted on)
        self.reports = reports or {}       # run id -> remove_run()'s report


def cleanup_dead_runs():
    """Remove what runs whose lab process is gone (SIGKILL, crash) left behind. A corrupt record is
    reported (CleanupResult.problems) and skipped; it never raises and never blocks a run."""
    records, problems = scan_records()
    result = CleanupResult(problems=problems)
    for record in records:
        if not record.owner_alive():
            result.reports[record.run_id] = remove_run(record)
            result.append(record.run_id)
    for problem in problems:
        log.warning("run record skipped: %s", problem)
    return result


def check_report():
    """Lines for `tcplab cleanup --check`: each record, whether its run lives, what it left; corrupt ones."""
    records, problems = scan_records()
    lines = []
    for record in records:
        state = "running" if record.owner_alive() else "dead"
        lines.append(f"{record.run_id} ({state}, {record.purpose}): {', '.join(leftovers(record)) or 'nothing left'}")
    lines += [f"corrupt record skipped: {p}" for p in problems]
    return lines or [f"no run records in {runrecord.RECORD_DIR}: nothing to clean"]

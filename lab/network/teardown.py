"""Removing what a run created, by its run record: PIDs checked by start time, the processes inside the
namespaces its hosts own, its interfaces and bridges (names carrying the run id), and the machine's sysctls
as they were. Never by a name or pattern that could match someone else's."""
import os
import signal
import subprocess
import time
from pathlib import Path
from shutil import which

from .. import hosts as hostcfg
from ..runrecord import all_records, process_start_time, same_process


def _netns_inode(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _pids_in_netns(inode):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _netns_inode(entry) == inode:
            pids.append(int(entry))
    return pids


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
            time.sleep(0.02)


def _link_exists(name):
    return Path(f"/sys/class/net/{name}").exists()


def remove_run(record):
    """Remove everything RECORD names that still exists; restore the machine's sysctls; drop the record."""
    root_inode = _netns_inode(1)
    live = {int(pid): info for pid, info in record.processes.items() if same_process(int(pid), info["start"])}
    killed = {}
    for pid, info in live.items():
        inode = _netns_inode(pid)
        # A host owns its namespace: everything inside it is the run's (guests, shells' children).
        if info["role"].startswith("host") and inode and inode != root_inode:
            for other in _pids_in_netns(inode):
                killed[other] = process_start_time(other)
                _kill(other)
        killed[pid] = info["start"]
        _kill(pid)
    _wait_gone(killed, timeout=5)
    if record.ovs_bridges and which("ovs-vsctl"):
        for bridge in record.ovs_bridges:
            subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge],
                           capture_output=True, timeout=15)
    for name in record.root_interfaces + record.switches:
        if _link_exists(name):
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
    restore_machine_sysctls(record.machine_sysctls)
    record.remove()


def restore_machine_sysctls(before):
    """Write back any guarded root-namespace sysctl that differs from BEFORE; return what was changed."""
    now = hostcfg.read_machine_sysctls(before)
    changed = {k: (now[k], v) for k, v in before.items() if k in now and now[k] != v}
    for key, (_, value) in changed.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    return changed


def leftovers(record):
    """What of RECORD still exists (for tests and `tcplab cleanup --check`): a list of descriptions."""
    found = [f"process {pid} ({info['role']})" for pid, info in record.processes.items()
             if same_process(int(pid), info["start"])]
    found += [f"interface {n}" for n in record.root_interfaces + record.switches if _link_exists(n)]
    return found


def cleanup_dead_runs():
    """Remove what runs whose lab process is gone (SIGKILL, crash) left behind; return their ids."""
    removed = []
    for record in all_records():
        if not record.owner_alive():
            remove_run(record)
            removed.append(record.run_id)
    return removed

"""Shared test set-up: the `root` marker, and a session-end check that no run left anything behind."""
import os
import signal
import subprocess

import pytest

from lab import sysctl as sysctls
from lab.network import sysctls as hostcfg
from lab.runrecord import all_records

IS_ROOT = os.geteuid() == 0
IN_CI = os.environ.get("CI") == "true"



def _ignore(signum, frame):
    """SIGINT stays ignored in the suite's own process, as whoever started it asked."""


# The suite sends SIGINT to lab processes it starts and expects them to clean up and exit 130. Started in
# the background of a script (`scripts/test.sh &`, nohup), it has SIGINT ignored, and an ignored signal stays
# ignored across exec: those tests then failed for a reason that is not the lab's (seen: 5 failures in a
# clean-clone run started with `&`). A handled signal is reset to the default by exec, so handle it here.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, _ignore)


def _root_links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def pytest_collection_modifyitems(config, items):
    if IS_ROOT:
        # The tests that need the machine's own namespace skip elsewhere (scripts/platform-check.sh runs the
        # suite in a namespace of its own, by design); CI must not skip them silently by running in one.
        if IN_CI and not hostcfg.in_machine_netns() and os.environ.get("TCPLAB_PLATFORM_CHECK") != "1":
            raise pytest.UsageError("CI must run the suite as root in the machine's own network namespace "
                                    "(here: another namespace, or a read-only /proc/sys)")
        return
    if IN_CI:
        raise pytest.UsageError("CI must run the real-network tests: run the suite as root (sudo scripts/test.sh)")
    skip = pytest.mark.skip(reason="needs root: builds real networks (run: sudo scripts/test.sh)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def machine_left_as_found():
    """After the whole session: no run records, no new root interfaces, guarded sysctls unchanged."""
    if not IS_ROOT:
        yield
        return
    links = _root_links()
    guarded = hostcfg.read_machine_sysctls(sysctls.MACHINE_GUARDED)
    yield
    leaks = []
    # Another lab run on this machine (a second checkout's tests, a teacher's `tcplab run`) is not ours:
    # its record has a live owner that is not this process; ignore it and the interfaces named after it.
    records = all_records()
    foreign = [r.run_id for r in records if r.owner_alive() and r.owner_pid != os.getpid()]
    left = [r.run_id for r in records if r.run_id not in foreign]
    if left:
        leaks.append(f"run records left: {left}")
    new_links = {n for n in _root_links() - links if not n.startswith(tuple(foreign) or ("\0",))}
    if new_links:
        leaks.append(f"interfaces left in the root namespace: {sorted(new_links)}")
    now = hostcfg.read_machine_sysctls(sysctls.MACHINE_GUARDED)
    changed = {k: (v, now.get(k)) for k, v in guarded.items() if now.get(k) != v}
    if changed:
        leaks.append(f"machine sysctls changed: {changed}")
    assert not leaks, "; ".join(leaks)

"""Helpers for real-network tests: start guests, read counters, wait with bounds (never bare sleeps)."""
import contextlib
import sys
import time
from pathlib import Path

import pytest

from lab import counters
from lab.guests import GuestProcess
from lab.network.sysctls import in_machine_netns

# What only the machine's own network namespace has: the defaults new namespaces copy (tcp_rmem, the congestion
# control) and the machine-wide keys. scripts/platform-check.sh runs the suite in a namespace of its own.
needs_machine_netns = pytest.mark.skipif(
    not in_machine_netns(), reason="needs to write the machine-wide sysctls, as root in the machine's own network "
    "namespace (new namespaces copy their defaults from there): here another namespace or a read-only /proc/sys")


def snapshot(lab, *hosts):
    return {h: counters.read_host_counters(lab.host(h).pid) for h in hosts}


def deltas(lab, before):
    now = snapshot(lab, *before)
    return {h: counters.delta(before[h], now[h]) for h in before}


def counter(deltas_of_host, name):
    return counters.lookup(deltas_of_host, name)


def guest(lab, host, program, *args, ready=None, timeout=5):
    g = GuestProcess(f"{program}@{host}", host, program, args).start(lab)
    if ready:
        assert g.wait_event(ready, timeout), f"{program} on {host} did not report {ready!r}: {g.stderr}"
    return g


def wait_until(predicate, timeout, interval=0.05):
    """Poll PREDICATE until true or TIMEOUT; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def events(g, kind):
    return [e for e in g.events if e.get("event") == kind]


@contextlib.contextmanager
def lab_prompt(log_path, *cli_args, timeout=30):
    """`tcplab cli CLI_ARGS` under pexpect, at its first prompt. Leaving the block exits the prompt and asserts
    that the network was removed and the CLI exited 0; LOG_PATH keeps what it printed, shown on failure."""
    import pexpect                      # a missing module fails here: never a skip in root CI
    root = Path(__file__).resolve().parents[2]
    with open(log_path, "w") as log:
        child = pexpect.spawn(sys.executable, ["-m", "lab.cli", "cli", *cli_args], cwd=str(root),
                              encoding="utf-8", timeout=timeout)
        child.logfile_read = log
        try:
            child.expect("tcplab> ")
            yield child
            child.sendline("exit")
            child.expect("network removed")
            child.expect(pexpect.EOF)
        finally:
            child.close()
    assert child.exitstatus == 0, Path(log_path).read_text()


def ask(child, line, *patterns):
    """Send LINE at the prompt, expect each pattern in turn, then the next prompt; the last match."""
    child.sendline(line)
    for p in patterns:
        child.expect(p)
    match = child.match
    child.expect(r"tcplab> |h\d+> ")
    return match

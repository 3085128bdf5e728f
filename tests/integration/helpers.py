"""Helpers for real-network tests: start guests, read counters, wait with bounds (never bare sleeps)."""
import time

from lab import counters
from lab.guests import GuestProcess


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

"""The kernel's own account of a run: drops (with the kernel's reason), retransmissions, resets, socket state
changes and per-segment sender state, each put on the lab host (network namespace) it happened on.

Public API (mechanism: tracer.py and hub.py; what fires in each scenario: docs/kernel-events.md):
    available() -> (bool, reason)            can this process trace, and if not, why (never raises)
    Tracer(hosts, ports, cap)                start() / stop() -> TraceResult, or a `with` block
    netns_inode(pid) -> int                  the namespace inode of a host's shell (lab.host(name).pid)
    check() -> (status, detail, fix)         the `tcplab doctor` line
    shutdown()                               stop the process's bpftrace (also done at exit)
"""
from .hub import shutdown
from .kernel import TraceError, available, check, netns_inode
from .tracer import Tracer, TraceResult

__all__ = ["TraceError", "Tracer", "TraceResult", "available", "check", "netns_inode", "shutdown"]

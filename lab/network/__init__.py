"""The network room: the only code that creates or deletes kernel objects (namespaces via host shells,
links, bridges, qdiscs).

- lifecycle.py: LabNetwork, a context manager that builds a Mininet network, tunes its hosts, shapes links
  and stops everything it started (on exit, exception, SIGINT, SIGTERM, SIGHUP).
- teardown.py: removal by run record (also `tcplab cleanup` after a SIGKILL), the leak view, and the
  machine's sysctls put back.
- probes.py: what the kernel can do (bridge, htb, tbf, netem), tried in throwaway namespaces.
"""
from .lifecycle import SWITCH_KINDS, bare_mininet, LabNetwork, NetworkSpec, Terminated, check_environment, shape_commands
from .probes import OVS_FIX, netem_available, ovs_kernel_module, ovs_running, probe_bridge, probe_qdisc
from .teardown import check_report, cleanup_dead_runs, leftovers, remove_run, restore_machine_sysctls

__all__ = ["SWITCH_KINDS", "bare_mininet", "shape_commands", "LabNetwork", "NetworkSpec", "Terminated", "check_environment", "netem_available",
           "ovs_kernel_module", "ovs_running", "OVS_FIX", "probe_bridge", "probe_qdisc", "cleanup_dead_runs", "leftovers", "remove_run",
           "restore_machine_sysctls", "check_report"]

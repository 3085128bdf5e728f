"""The network room: the only code that creates or deletes kernel objects, and that writes per-host sysctls (namespaces via host shells,
links, bridges, qdiscs).

- lifecycle.py: LabNetwork, a context manager that builds a Mininet network, tunes its hosts, shapes links
  and stops everything it started (on exit, exception, SIGINT, SIGTERM, SIGHUP; signals wait for the
  cleanup); bare_mininet(), the benchmark's reference.
- nodes.py: the Mininet classes the lab builds with (LabMininet) and the run record of what they create.
- build.py: the build in batches (one `ip -batch` for links and bridges, hosts configured over netlink).
- shells.py: node shells spawned at once and awaited together, with a time limit (no silent hangs).
- teardown.py: removal by validated run record (also `tcplab cleanup` after a SIGKILL): processes through
  pidfds, hosts' namespaces ended so their veth pairs go in one kernel batch; machine sysctls settled.
- probes.py: what the kernel can do (bridge, htb, tbf, netem), tried in throwaway namespaces.
"""
from .lifecycle import SWITCH_KINDS, bare_mininet, LabNetwork, NetworkSpec, Terminated, check_environment, shape_commands
from .probes import OVS_FIX, netem_available, ovs_kernel_module, ovs_running, probe_bridge, probe_qdisc
from .sysctls import read_host_sysctls, read_machine_sysctls, run_in, set_host_sysctls
from .teardown import check_report, cleanup_dead_runs, leftovers, remove_run, restore_machine_sysctls

__all__ = ["read_host_sysctls", "read_machine_sysctls", "run_in", "set_host_sysctls", "SWITCH_KINDS", "bare_mininet", "shape_commands", "LabNetwork", "NetworkSpec", "Terminated", "check_environment", "netem_available",
           "ovs_kernel_module", "ovs_running", "OVS_FIX", "probe_bridge", "probe_qdisc", "cleanup_dead_runs", "leftovers", "remove_run",
           "restore_machine_sysctls", "check_report"]

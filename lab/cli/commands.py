"""`tcplab doctor`, `cleanup`, `demo`, `list`, `show` and `cli`: thin calls into the lab."""
import time

def cmd_doctor(args):
    from ..doctor import can_run, run_checks
    checks = run_checks()
    for c in checks:
        print(f"{c.status:<5} {c.name:<13} {c.detail}")
        if c.fix and c.status != "OK":
            print(f"      {'':<13} fix: {c.fix}")
    ok = can_run(checks)
    print("\nThe lab can run here." if ok else "\nThe lab cannot run here until the FAIL lines are fixed.")
    return 0 if ok else 2


def cmd_cleanup(args):
    from ..network import check_report, cleanup_dead_runs
    if args.check:
        print("\n".join(check_report()))
        return 0
    removed = cleanup_dead_runs()
    print(f"removed what {len(removed)} dead run(s) left: {', '.join(removed)}" if removed
          else "nothing to clean: no dead run left state behind (live runs are left alone)")
    for problem in getattr(removed, "problems", []):
        print(f"corrupt record skipped (not acted on): {problem}")
    for run_id, report in getattr(removed, "reports", {}).items():
        for line in report["refused"] + [f"interface {n} could not be removed" for n in report["interfaces_left"]]:
            print(f"{run_id}: {line}")
        for key, (was, now) in report["sysctls"]["left"].items():
            print(f"{run_id}: machine sysctl {key} changed during the run by someone else (was {was}, now {now}): left")
    return 0


def _network_spec(args):
    from .. import topology
    from ..network import NetworkSpec
    ref = topology.parse_ref(args.topology)
    if ref.file:                        # named on this command line by the person running it: trusted
        topology.find(ref, trusted=[ref.file])
    if args.hosts is not None:
        ref.args = [args.hosts] + ref.args[1:]
    return NetworkSpec(topology=ref.name, topology_file=ref.file, args=ref.args, params=ref.params, switch=args.switch)


def _scenario_ref(ref):
    from ..library import scenario_paths
    return ref.endswith((".yaml", ".yml")) or ref in {p.stem for p in scenario_paths()}


def cmd_cli(args):
    from ..console import LabConsole
    from ..network import LabNetwork
    sc = None
    if _scenario_ref(args.topology):
        from ..library import load_scenario
        from ..runner import network_spec
        sc = load_scenario(args.topology, args.trust)
        spec = network_spec(sc, args.trust)
    else:
        spec = _network_spec(args)
    started = time.monotonic()
    with LabNetwork(spec, purpose=f"cli {args.topology}") as lab:
        if sc:
            from ..runner import shape_links
            shape_links(lab, sc.links)
        hosts = ", ".join(f"{h} {lab.host(h).IP()}" for h in lab.host_names())
        what = f"scenario {sc.name}'s network" if sc else spec.topology
        print(f"tcplab: {what} is up in {time.monotonic() - started:.1f} s (run {lab.run_id}): {hosts}")
        if sc:
            print("tcplab: its sysctls are applied; its guests are ready to start by hand: "
                  + ", ".join(g.name for g in sc.guests) + " (guests, start NAME, events NAME, stop NAME)")
        print("tcplab: lab commands: counters HOST, sockets HOST, sysctl HOST [KEY[=VALUE]], sockconsole HOST; "
              "`help` lists all; `exit` removes the network")
        lab.set_log_level("output")
        if args.script:
            print(f"tcplab: running {args.script}, one command per line (as typed at the prompt)", flush=True)
        LabConsole(lab, scenario=sc, script=args.script)
    print("tcplab: network removed")
    return 0


def cmd_demo(args):
    from ..demo import run_demo
    return run_demo(print)


def cmd_list(args):
    from ..library import list_scenarios
    for s in list_scenarios():
        print(f"{s.name:<20} {s.title}")
    return 0


def cmd_show(args):
    from ..library import load_scenario
    from ..library import describe
    print(describe(load_scenario(args.scenario, args.trust)))
    return 0

"""tcplab's command line: one subcommand per verb; the only place that prints errors and sets exit codes.

Exit status: 0 everything passed, 1 an expectation failed, 2 bad input or environment.
"""
import argparse
import sys
import threading
import time

from . import __version__
from .errors import LabError
from .network import Terminated

DESCRIPTION = """\
tcplab builds small networks of Linux hosts (network namespaces, veth links, bridges) and runs
real TCP servers and clients in them, then shows what the kernel did: the queues of each socket
and the netstat counters of each host (ListenOverflows, TCPToZeroWindowAdv, TCPWinProbe...).

First steps (as root):
  tcplab doctor                 can this machine run the lab?
  tcplab demo                   two hosts, one TCP transfer, per-host counter changes
  tcplab cli                    a Mininet prompt on h1 and h2, with counters/sockets/sysctl
  tcplab list                   the scenarios, one per TCP socket behaviour
  tcplab run zero-window        run one and check it against the kernel's counters
  tcplab run all                run every scenario (the main job); open results/index.html
  tcplab exercises              classroom exercises that check themselves (tcplab check NAME)
"""


def cmd_doctor(args):
    from .doctor import can_run, run_checks
    checks = run_checks()
    for c in checks:
        print(f"{c.status:<5} {c.name:<13} {c.detail}")
        if c.fix and c.status != "OK":
            print(f"      {'':<13} fix: {c.fix}")
    ok = can_run(checks)
    print("\nThe lab can run here." if ok else "\nThe lab cannot run here until the FAIL lines are fixed.")
    return 0 if ok else 2


def cmd_cleanup(args):
    from .network import check_report, cleanup_dead_runs
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
    from . import topology
    from .network import NetworkSpec
    ref = topology.parse_ref(args.topology)
    if ref.file:                        # named on this command line by the person running it: trusted
        topology.find(ref, trusted=[ref.file])
    if args.hosts is not None:
        ref.args = [args.hosts] + ref.args[1:]
    return NetworkSpec(topology=ref.name, topology_file=ref.file, args=ref.args, params=ref.params, switch=args.switch)


def _scenario_ref(ref):
    from .library import scenario_paths
    return ref.endswith((".yaml", ".yml")) or ref in {p.stem for p in scenario_paths()}


def cmd_cli(args):
    from .console import LabConsole
    from .network import LabNetwork
    sc = None
    if _scenario_ref(args.topology):
        from .library import load_scenario
        from .runner import network_spec
        sc = load_scenario(args.topology, args.trust)
        spec = network_spec(sc, args.trust)
    else:
        spec = _network_spec(args)
    started = time.monotonic()
    with LabNetwork(spec, purpose=f"cli {args.topology}") as lab:
        if sc:
            from .runner import shape_links
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


def cmd_exercises(args):
    from .classroom import list_exercises, load_exercise, variants_of
    from .classroom.exercise import shown_values
    if args.name:
        ex = load_exercise(args.name, student=args.student)
        if args.start:           # only the file, so that `> mine.yaml` saves it
            print(ex.start_text, end="")
            return 0
        print(ex.handout_text)
        if ex.values:
            print(f"\n(Your numbers, variant {ex.variant + 1} of {len(variants_of(ex.name))}: "
                  + ", ".join(f"{k} = {v}" for k, v in shown_values(ex.name, ex.values).items()) + ")")
            print(f"Your start file: tcplab exercises {ex.name} --student {args.student} --start > mine.yaml")
        return 0
    for ex in list_exercises():
        varies = " (numbers differ per student)" if variants_of(ex.name) else ""
        print(f"{ex.name:<20} {ex.title}{varies}")
    print("\nA handout: tcplab exercises NAME [--student ID]. Check your work: sudo tcplab check NAME --scenario FILE "
          "[--student ID]")
    return 0


def cmd_check(args):
    from .classroom import check_labs, grade, load_exercise
    ex = load_exercise(args.exercise, student=args.student)
    if args.labs:
        out = args.out or f"check-{ex.name}"
        print(f"{ex.name}: grading {args.labs} ({args.jobs} at a time, at most {args.timeout:g} s each)", flush=True)

        def progress(done, total, failing, student):
            print(f"  {done}/{total} graded, {failing} failing  (last: {student})", flush=True)

        rows, wall = check_labs(ex, args.labs, out, jobs=args.jobs, timeout=args.timeout, progress=progress)
        print()
        for student in sorted({r["student"] for r in rows}):
            mine = [r for r in rows if r["student"] == student]
            if mine[0]["status"] != "graded":
                print(f"  {student:<20} {mine[0]['status'].upper():<8} {mine[0]['message'][:160]}")
                continue
            ok = sum(bool(r["passed"]) for r in mine)
            print(f"  {student:<20} {ok}/{len(mine)} criteria passed")
        from .classroom.dashboard import most_missed
        top = most_missed(rows)
        if top and top[1] < top[2]:
            print(f"\nMost missed: {top[0]} ({top[2] - top[1]} of {top[2]}). Its hint: {top[3]}")
        print(f"\n{len({r['student'] for r in rows})} students in {wall:.0f} s. The class at a glance: {out}.html; "
              f"one row per student and criterion: {out}.csv and {out}.json; reports under {out}-reports/")
        return 0
    print(f"{ex.name}: {ex.title}" + (f" (variant {ex.variant + 1} for {args.student})" if ex.values else ""))
    print(f"  running {args.scenario or ex.start} ...", flush=True)
    started = time.monotonic()
    try:
        _, grades = grade(ex, args.scenario, out_dir=args.out)
    except LabError as e:
        if args.autograding:       # CI still gets a payload that says why nothing was graded
            from .classroom.exports import error_payload
            with open(args.autograding, "w") as f:
                f.write(error_payload(str(e)))
        raise
    _write_grade_files(args, ex, grades, time.monotonic() - started)
    width = max(len(g.criterion) for g in grades)
    for g in grades:
        print(f"  {'PASS' if g.passed else 'FAIL'}  {g.criterion:<{width}}  {g.message}")
        if not g.passed:
            print(f"        hint: {g.hint}")
    passed = sum(g.passed for g in grades)
    print(f"{passed} of {len(grades)} criteria passed." + ("" if passed < len(grades) else " Well done."))
    return 0 if passed == len(grades) else 1


def _write_grade_files(args, ex, grades, wall):
    from .classroom import exports
    if args.junit:
        with open(args.junit, "w") as f:
            f.write(exports.junit(ex, grades, wall))
    if args.autograding:
        with open(args.autograding, "w") as f:
            f.write(exports.autograding(grades))


def cmd_demo(args):
    from .demo import run_demo
    return run_demo(print)


def cmd_list(args):
    from .library import list_scenarios
    for s in list_scenarios():
        print(f"{s.name:<20} {s.title}")
    return 0


def cmd_show(args):
    from .library import load_scenario
    from .library import describe
    print(describe(load_scenario(args.scenario, args.trust)))
    return 0


def cmd_run(args):
    from .suite import run_suite, targets
    out = sys.stdout
    scenarios = targets(args.scenarios, args.trust)
    ticker = []

    def start(n, total, sc):
        print(f"[{n}/{total}] {sc.name}: {sc.title}", flush=True)
        if args.quiet and out.isatty():
            ticker.append(Ticker(out))

    def step(text):
        if not args.quiet:
            print(f"        {text}", flush=True)

    def done(run):
        while ticker:
            ticker.pop().stop()
        r = run.result
        print(f"        {r.status} in {r.wall_s:.1f} s{_detail(r)}  -> {run.folder / 'report.html'}", flush=True)

    try:
        suite = run_suite(scenarios, args.out, args.repeat, args.capture, args.trust, start, step, done,
                          trace=not args.no_trace)
    except KeyboardInterrupt:
        print(f"        interrupted: partial results are in {args.out}; the network was removed", flush=True)
        raise
    finally:
        while ticker:
            ticker.pop().stop()
    print(f"\n{'scenario':<20} {'status':<7} {'wall s':>7} {'timeline s':>10}  checks")
    for run in suite.runs:
        r = run.result
        judged = [v for v in r.expectations if not v.skipped]
        print(f"{run.name:<20} {r.status:<7} {r.wall_s or 0:>7.1f} {r.timeline_s or 0:>10.1f}  "
              f"{sum(v.passed for v in judged)}/{len(judged)}")
    if args.repeat > 1:
        print(f"\nOver {args.repeat} runs each: pass rate and spread (min / median / max) of each check's observed value")
        for name, spreads in suite.spreads().items():
            print(f"  {name}")
            for s in spreads:
                sp = s.spread()
                figures = f"{_num(sp['min'])} / {_num(sp['median'])} / {_num(sp['max'])}" if sp else "-"
                flag = "" if s.passed == s.runs else "   <- not every run"
                print(f"    {s.passed}/{s.runs}  {figures:<28} {s.check}{flag}")
    counts = suite.counts()
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped, {counts['ERROR']} errors "
          f"in {suite.wall_s:.1f} s")
    for name, reason in suite.skipped():
        print(f"  skipped: {name}: {reason}")
    print(f"Reports: {suite.index.resolve()}   JUnit: {suite.root / 'junit.xml'}")
    return suite.exit_code(strict=args.strict)


def _num(v):
    return f"{v:,.4g}" if isinstance(v, float) else f"{v:,}"


def _detail(result):
    if result.skipped:
        return f" ({result.skipped})"
    if result.error:
        return f" ({result.error})"
    failed = [v for v in result.expectations if not v.passed and not v.skipped]
    skipped = [v for v in result.expectations if v.skipped]
    return "".join(f"\n          {v.message}" for v in failed) + \
        "".join(f"\n          not judged: {v.check} ({v.skipped})" for v in skipped)


class Ticker(threading.Thread):
    """On a terminal, a line that counts the seconds of the running scenario (never in logs or pipes)."""

    def __init__(self, out):
        super().__init__(daemon=True)
        self.out, self.t0, self.done = out, time.monotonic(), threading.Event()
        self.start()

    def run(self):
        while not self.done.wait(0.25):
            self.out.write(f"\r        running... {time.monotonic() - self.t0:4.1f} s")
            self.out.flush()

    def stop(self):
        self.done.set()
        self.join()
        self.out.write("\r\033[K")
        self.out.flush()


def cmd_bench(args):
    import json as _json

    from . import bench, bench_more, stability
    say = print
    figures = {}
    sections = args.only.split(",") if args.only else ["lifecycle", "library", "storm", "throughput", "soak",
                                                         "tracing", "classroom"]
    sizes = [int(x) for x in args.sizes.split(",")]
    steps = {
        "lifecycle": (f"lifecycle: single with {args.sizes} hosts, tcplab vs bare Mininet, {args.rounds} alternating rounds",
                      lambda: bench.lifecycle(sizes, args.rounds, say)),
        "library": ("library: tcplab run all", lambda: bench.library_run(say)),
        "storm": (f"storm: {args.clients} clients at one server", lambda: bench.storm(args.clients, say)),
        "throughput": ("throughput: guest writer->reader vs iperf3", lambda: bench.throughput(3, say)),
        "soak": (f"soak: {args.soak} consecutive runs with a leak check after each, then two runs at once",
                 lambda: bench.soak(args.soak, say)),
        "tracing": ("tracing: the library with and without the kernel event stream", lambda: bench_more.tracing(say)),
        "classroom": ("classroom: a class of 30 graded with --jobs 1, 2 and 4", lambda: bench_more.classroom(say)),
        "stability": (f"stability: the library under {args.stability}",
                      lambda: stability.stability({k: int(v) for k, v in (x.split("=") for x in args.stability.split(","))},
                                                  say)),
    }
    unknown = [s for s in sections if s not in steps]
    if unknown:
        raise LabError(f"unknown bench section {', '.join(unknown)} (sections: {', '.join(steps)})")
    for i, name in enumerate(sections, 1):
        title, step = steps[name]
        say(f"{i}. {title}")
        figures[name] = step()
        if name == "soak":
            figures["concurrent"] = bench.concurrent(say)
    machine = bench.machine_description()
    if args.write:
        bench.write_page(args.write, machine, figures)
        say(f"\nwritten: {args.write}")
    if args.json:
        with open(args.json, "w") as f:
            _json.dump({"machine": machine, "figures": figures}, f, indent=1, default=str)
    return 0


def _count(text):
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("expected a whole number from 1 to 1000")
    return value


def _trust_option(s):
    s.add_argument("--trust", action="append", default=[], metavar="FOLDER",
                   help="topology files (Python: loading one runs it, as root) may be loaded from FOLDER; "
                   "scenarios may name only shipped topologies otherwise (repeatable)")


def parser():
    p = argparse.ArgumentParser(prog="tcplab", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tcplab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("doctor", help="check that this machine can run the lab (OK/WARN/FAIL, with fixes)")
    s.set_defaults(run=cmd_doctor)

    s = sub.add_parser("demo", help="two hosts, one TCP transfer, and each host's counter changes")
    s.set_defaults(run=cmd_demo)

    s = sub.add_parser("list", help="the scenarios, one per line, name first")
    s.set_defaults(run=cmd_list)

    s = sub.add_parser("show", help="validate a scenario and say what it teaches and what it will run",
                       description="Validate a scenario completely (nothing is built) and describe it. A mistake is "
                       "reported with the file, the line, the key and what is allowed; exit 2.")
    s.add_argument("scenario", help="a scenario name (tcplab list) or a YAML file")
    _trust_option(s)
    s.set_defaults(run=cmd_show)

    s = sub.add_parser("run", help="run scenarios and check them against each host's counters",
                       description="Run scenarios. Exit 0: all passed; 1: an expectation failed; 2: bad input or "
                       "environment. Each scenario writes results.json, junit.xml and report.html under --out.")
    s.add_argument("scenarios", nargs="+", metavar="NAME|FILE|all")
    s.add_argument("--out", default="results", help="directory for results (default: ./results)")
    s.add_argument("--repeat", type=_count, default=1, metavar="N",
                   help="run each scenario N times; prints each check's pass rate and the spread of its observed value")
    s.add_argument("--quiet", action="store_true", help="only one line per scenario and the summary")
    s.add_argument("--no-trace", action="store_true",
                   help="do not record the kernel's own events (drops with their reasons, retransmissions, resets: "
                   "bpftrace on tracepoints); checks over them are then not judged")
    s.add_argument("--strict", action="store_true",
                   help="exit 3 when anything was skipped (a scenario the kernel cannot run, a check not judged); CI uses it")
    _trust_option(s)
    s.add_argument("--capture", action="store_true",
                   help="tcpdump every host interface: a pcap per host in the results (open in Wireshark)")
    s.set_defaults(run=cmd_run)
    s = sub.add_parser("cli", help="a Mininet prompt with counters, sockets, sysctl and the socket console",
                       description="Open a network and Mininet's CLI on it. Topology: a shipped name (single, "
                       "pair, dumbbell, star), NAME,ARG,... as with `mn --topo`, or FILE.py[:NAME]; or a scenario "
                       "(name or .yaml): its network, sysctls and guests.",
                       epilog="Example: tcplab cli star --hosts 8   then: counters server, sockets server")
    s.add_argument("topology", nargs="?", default="single",
                   help="a topology (default: single, h1 10.0.0.1 and h2 10.0.0.2), or a scenario name or .yaml file: "
                   "its network with its sysctls, and its guests to start by hand")
    s.add_argument("--hosts", type=int, help="number of hosts (single) or clients (star, dumbbell)")
    _trust_option(s)
    s.add_argument("--script", metavar="FILE", help="run the commands in FILE (one per line, as typed at the "
                   "prompt), then remove the network: a session written down, e.g. for a walkthrough")
    s.add_argument("--switch", choices=("bridge", "ovs", "ovs-user"), default="bridge",
                   help="bridge: Linux bridge (default, kernel speed); ovs: OVS kernel datapath; ovs-user: OVS userspace")
    s.set_defaults(run=cmd_cli)

    s = sub.add_parser("exercises", help="the classroom exercises, one per line; or one exercise's handout",
                       description="List the exercises, or print one's handout. Exercises with variants give each "
                       "student their own numbers, drawn from their student id.")
    s.add_argument("name", nargs="?", help="an exercise: print its handout (with this student's numbers)")
    s.add_argument("--student", help="your student id (the numbers of your variant follow from it)")
    s.add_argument("--start", action="store_true", help="print only your start scenario (save it, change it, check it)")
    s.set_defaults(run=cmd_exercises)

    s = sub.add_parser("check", help="grade an exercise: your scenario, run for real, criterion by criterion",
                       description="Run a student's version of an exercise and grade it by the kernel's counters and "
                       "the guests' events: PASS/FAIL per criterion, with a hint when it fails. Exit 0 when all pass.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Examples:\n"
                       "  tcplab check overflow-fix --scenario my-overflow.yaml\n"
                       "  tcplab check overflow-fix --labs class/ --out grades --jobs 2   (class/STUDENT/answer.yaml)")
    s.add_argument("exercise", help="an exercise name (tcplab exercises)")
    s.add_argument("--scenario", help="your version of the exercise's start.yaml (default: the start itself)")
    s.add_argument("--labs", help="a folder of student copies, one folder per student (named by student id), one .yaml in each")
    s.add_argument("--student", help="the student id whose variant's numbers apply (with --labs: each folder's name)")
    s.add_argument("--out", help="with --labs: the CSV/JSON file name prefix; else a folder for the run's results")
    s.add_argument("--jobs", type=_count, default=1, metavar="N", help="with --labs: grade N answers at once (default 1)")
    s.add_argument("--junit", metavar="FILE", help="also write the grades as JUnit XML (a test case per criterion: GitLab CI)")
    s.add_argument("--autograding", metavar="FILE", help="also write GitHub Classroom's autograding payload (base64) "
                   "for its grading reporter (teacher/ci/github/)")
    s.add_argument("--timeout", type=float, default=300, metavar="SEC",
                   help="with --labs: stop a student's run after SEC seconds (default 300); it becomes that student's row")
    s.set_defaults(run=cmd_check)

    s = sub.add_parser("bench", help="benchmarks: lifecycle vs bare Mininet, the library, a 200-client storm, "
                       "throughput vs iperf3, and a soak with leak checks; prints figures, writes docs/benchmarks.md",
                       description="Measure how fast, how big and how robust tcplab is on this machine (about 15 "
                       "minutes with the defaults). Figures, not pass/fail: goals are stated beside them.")
    s.add_argument("--only", help="comma-separated sections: lifecycle, library, storm, throughput, soak, tracing, "
                   "classroom, stability (not in the default set: about an hour)")
    s.add_argument("--stability", default="cubic=20,bbr=20,reno=10,cpu-hog=10",
                   help="stability: CONDITION=RUNS,... (conditions: cubic, bbr, reno: the machine's default congestion "
                   "control; cpu-hog: both cores busy)")
    s.add_argument("--sizes", default="2,50,200,1000",
                   help="host counts for the lifecycle section (default 2,50,200,1000)")
    s.add_argument("--rounds", type=int, default=3, help="alternating rounds per size (default 3; medians)")
    s.add_argument("--clients", type=int, default=200, help="client hosts in the storm (default 200)")
    s.add_argument("--soak", type=int, default=200, help="consecutive runs in the soak (default 200)")
    s.add_argument("--write", default="docs/benchmarks.md", help="the Markdown page to write ('' for none)")
    s.add_argument("--json", help="also write the raw figures as JSON")
    s.set_defaults(run=cmd_bench)

    s = sub.add_parser("cleanup", help="remove what runs that died (SIGKILL, crash) left behind; never anything else")
    s.add_argument("--check", action="store_true", help="only list run records and what each left")
    s.set_defaults(run=cmd_cleanup)

    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "run", None):
        p.print_help()
        return 2
    try:
        return args.run(args)
    except LabError as e:
        print(f"tcplab: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tcplab: interrupted; the network was removed", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"tcplab: stopped by {e}; the network was removed", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())

"""tcplab's command line: one subcommand per verb; the only place that prints for the user and sets exit codes.

Exit status: 0 everything passed, 1 an expectation failed, 2 bad input or environment, 3 something was skipped
(`run --strict`). Each subcommand is a thin function over the lab's modules, in a module of this package:
commands.py (doctor, cleanup, demo, list, show, cli), run.py, classroom.py, bench.py.
"""
import argparse
import sys

from .. import __version__
from ..errors import LabError
from ..network import Terminated
from .bench import cmd_bench
from .classroom import cmd_check, cmd_exercises
from .commands import cmd_cleanup, cmd_cli, cmd_demo, cmd_doctor, cmd_list, cmd_show
from .run import cmd_run

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
    s.add_argument("--scenarios", default="all",
                   help="stability: the scenarios to run (comma-separated; default all). The page keeps every other "
                   "scenario's figures: re-measure one scenario after changing its bands")
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


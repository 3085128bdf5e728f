"""`tcplab run`: scenarios, with live progress, a summary table, spreads over repeats, and the exit status."""
import sys
import threading
import time


def cmd_run(args):
    from ..suite import run_suite, targets
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

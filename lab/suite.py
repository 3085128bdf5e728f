"""`tcplab run`: many scenarios, repeats, live progress, a summary table, and the exit status."""
import json
import sys
import threading
import time
from pathlib import Path

from . import library
from .report import key_figures, write_index
from .results import write_junit
from .runner import run_scenario


def _targets(refs):
    names = []
    for ref in refs:
        names += [p.stem for p in library.scenario_paths()] if ref == "all" else [ref]
    # Validate every file before any network is built: a typo in the 9th fails in a second, not a minute.
    return [library.load_scenario(n) for n in names]


def run_command(args, out=sys.stdout):
    def say(text):
        print(text, file=out, flush=True)

    scenarios = _targets(args.scenarios)
    root = Path(args.out)
    total = len(scenarios) * args.repeat
    results, n = [], 0
    started = time.monotonic()
    for sc in scenarios:
        for k in range(1, args.repeat + 1):
            n += 1
            folder = root / sc.name / (f"run-{k}" if args.repeat > 1 else "")
            say(f"[{n}/{total}] {sc.name}: {sc.title}")
            progress = (lambda text: None) if args.quiet else (lambda text: say(f"        {text}"))
            ticker = Ticker(out) if args.quiet and out.isatty() else None
            try:
                result = run_scenario(sc, folder, progress, capture=args.capture)
            except KeyboardInterrupt:
                say(f"        interrupted: partial results in {folder}/results.json; the network was removed")
                raise
            finally:
                if ticker:
                    ticker.stop()
            results.append((sc, result, folder))
            say(f"        {result.status} in {result.wall_s:.1f} s" + _detail(result) + f"  -> {folder / 'report.html'}")
    write_junit([r for _, r, _ in results], root / "junit.xml")
    summary = [{"scenario": sc.name, "status": r.status, "wall_s": r.wall_s, "timeline_s": r.timeline_s,
                "results": str(folder / "results.json")} for sc, r, folder in results]
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    index = write_index(root, [{"scenario": sc.name, "status": r.status, "wall_s": r.wall_s,
                                "report": str((folder / "report.html").relative_to(root)),
                                "checks": f"{sum(e['passed'] for e in r.expectations)}/{len(r.expectations)}",
                                "figures": key_figures(r)} for sc, r, folder in results])
    say("")
    say(f"{'scenario':<20} {'status':<7} {'wall s':>7} {'timeline s':>10}  checks")
    for sc, r, _ in results:
        ok = sum(e["passed"] for e in r.expectations)
        say(f"{sc.name:<20} {r.status:<7} {r.wall_s or 0:>7.1f} {r.timeline_s or 0:>10.1f}  {ok}/{len(r.expectations)}")
    counts = {s: sum(r.status == s for _, r, _ in results) for s in ("PASS", "FAIL", "SKIP", "ERROR")}
    say(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped, {counts['ERROR']} errors "
        f"in {time.monotonic() - started:.1f} s")
    say(f"Reports: {index.resolve()}   JUnit: {root / 'junit.xml'}")
    if counts["ERROR"]:
        return 2
    return 1 if counts["FAIL"] else 0


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


def _detail(result):
    if result.skipped:
        return f" ({result.skipped})"
    if result.error:
        return f" ({result.error})"
    failed = [e for e in result.expectations if not e["passed"]]
    return "".join(f"\n          {e['message']}" for e in failed)

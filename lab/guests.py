"""Guest programs started inside hosts, and the JSON events they print.

The programs themselves live in guest/ (standard library only); this module starts them with the
lab's interpreter, collects their events on a reader thread, and stops them by PID.
"""
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .errors import LabError

GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"
PROGRAMS = {"server": "server.py", "client": "client.py", "synflood": "synflood.py",
            "sockconsole": "sockconsole.py"}


def guest_argv(program, args=()):
    """The command line that runs guest PROGRAM (-S: skip site, the guests need only the stdlib)."""
    if program not in PROGRAMS:
        raise LabError(f"unknown guest program {program!r} (programs: {', '.join(PROGRAMS)})")
    return [sys.executable, "-S", "-u", str(GUEST_DIR / PROGRAMS[program]), *map(str, args)]


class GuestProcess:
    """One guest program running in one host; `events` fills as it prints."""

    def __init__(self, name, host, program, args=()):
        self.name, self.host, self.program, self.args = name, host, program, list(args)
        self.proc = None
        self.events = []
        self.stderr = ""
        self.started_at = None
        self._cond = threading.Condition()
        self._threads = []

    def start(self, net):
        self.started_at = time.monotonic()
        self.proc = net.start_process(self.host, guest_argv(self.program, self.args),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for target in (self._read_events, self._read_stderr):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _read_events(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "output", "text": line.rstrip("\n"), "t": time.monotonic()}
            event.setdefault("guest", self.name)
            event["host"] = self.host
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        self.proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def _read_stderr(self):
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()

    def wait_event(self, kind, timeout):
        """The first event of KIND, waiting up to TIMEOUT seconds; None when it did not come."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e.get("event") == kind:
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._threads[0].is_alive()):
                    return None
                self._cond.wait(min(left, 0.1))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace=2.0):
        """SIGTERM (the guest writes its summary), then SIGKILL after GRACE seconds."""
        if self.proc is None:
            return
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            if not self.wait(grace):
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(2)

    def summary(self):
        for e in reversed(self.events):
            if e.get("event") == "summary":
                return e
        return None


def check_guest_args(program, argv):
    """The guest's own argparse verdict on ARGV: None when fine, else its error line. No process is started."""
    import contextlib
    import importlib
    import io
    if program not in PROGRAMS:
        return f"unknown program (programs: {', '.join(PROGRAMS)})"
    if str(GUEST_DIR) not in sys.path:
        sys.path.append(str(GUEST_DIR))
    module = importlib.import_module(Path(PROGRAMS[program]).stem)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            module.parse_args(list(argv))
    except SystemExit:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        return lines[-1].split("error: ", 1)[-1] if lines else "invalid arguments"
    return None

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


def proc_ended(proc):
    """Whether PROC (a Popen, or a guest forked by the launcher: lab/network/launcher.py) has ended. A forked
    guest whose exit status is unknown has ended all the same, which Popen's poll() cannot say."""
    ended = getattr(proc, "ended", None)
    return ended if ended is not None else proc.poll() is not None


class EventStream:
    """A child process that prints one JSON event per line: its events, its stderr, and waiting for one.

    Shared by the guests and the OpenFlow controller. `events` fills on a reader thread as lines arrive.
    """

    def __init__(self):
        self.proc = None
        self.events = []
        self._stderr = []
        self._cond = threading.Condition()
        self._threads = []
        self._stdout_done = threading.Event()
        self._stderr_done = threading.Event()

    @property
    def stderr(self):
        return "".join(self._stderr)

    def attach(self, proc, shared_reader=False):
        """Read PROC's stdout and stderr: on a thread each, or with SHARED_READER on the one thread that
        reads every such child's pipes (lab/pipereader.py: for a storm's thousand guests)."""
        self.proc = proc
        if shared_reader:
            from .pipereader import READER
            READER.add(proc.stdout, self._event_line, self._events_ended)
            READER.add(proc.stderr, self._stderr_line, self._stderr_done.set)
            return
        for target in (self._read_events, self._read_stderr):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)

    def decorate(self, event):
        """Subclasses add their own fields to each event."""
        return event

    def _event_line(self, line):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            event = {"event": "output", "text": line.rstrip("\n"), "t": time.monotonic()}
        with self._cond:
            self.events.append(self.decorate(event))
            self._cond.notify_all()

    def _events_ended(self):
        with self._cond:
            self._stdout_done.set()
            self._cond.notify_all()

    def _stderr_line(self, line):
        self._stderr.append(line)
        del self._stderr[:-100]          # the tail is what explains a failure

    def _read_events(self):
        try:
            for line in self.proc.stdout:
                self._event_line(line)
        finally:            # also when a line cannot be decoded: waiters must not wait out their timeouts
            self.proc.stdout.close()
            self._events_ended()

    def _read_stderr(self):
        try:
            for line in self.proc.stderr:
                self._stderr_line(line)
        finally:
            self.proc.stderr.close()
            self._stderr_done.set()

    def wait_closed(self, timeout):
        """Wait until the child has closed both pipes and every line is in."""
        self._stdout_done.wait(timeout)
        self._stderr_done.wait(timeout)

    def wait_event(self, match, timeout):
        """The first event whose kind is MATCH (or for which MATCH(event) is true), waiting up to TIMEOUT
        seconds; None when it did not come or the process ended first."""
        test = match if callable(match) else (lambda e: e.get("event") == match)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if test(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or (proc_ended(self.proc) and self._stdout_done.is_set()):
                    return None
                self._cond.wait(min(left, 0.1))


class GuestProcess(EventStream):
    """One guest program running in one host; `events` fills as it prints."""

    def __init__(self, name, host, program, args=(), congestion=None, fork=False):
        super().__init__()
        self.name, self.host, self.program, self.args = name, host, program, list(args)
        self.congestion = congestion       # set on each of its TCP sockets (guest/kernel.py)
        self.fork = fork                   # forked from the run's launcher rather than exec'd (LabNetwork.start_guest)
        self.started_at = None

    def start(self, net):
        self.started_at = time.monotonic()
        env = {"TCPLAB_CONGESTION": self.congestion} if self.congestion else None
        self.attach(net.start_guest(self.host, self.program, self.args, env=env, fork=self.fork),
                    shared_reader=self.fork)
        return self

    def decorate(self, event):
        event.setdefault("guest", self.name)
        event["host"] = self.host
        return event

    def running(self):
        return self.proc is not None and not proc_ended(self.proc)

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
        self.wait_closed(2)

    def summary(self):
        for e in reversed(self.events):
            if e.get("event") == "summary":
                return e
        return None


def _guest_module(program):
    import importlib
    if str(GUEST_DIR) not in sys.path:
        sys.path.append(str(GUEST_DIR))
    return importlib.import_module(Path(PROGRAMS[program]).stem)


# Fields the lab adds to every event it collects (lab/runner.py): which guest and host, and the time since
# the timeline began.
LAB_FIELDS = {"guest": ["str", "the guest's name"], "host": ["str", "the host it ran on"],
              "t_rel": ["float", "seconds since the timeline began"]}


def declared_events():
    """{program: {event: {"modes": [...] or None, "fields": {field: [type, meaning]}}}} as the programs declare
    them (guest/*.py EVENTS, lab/controller/events.py), every event with the common fields; None when the
    programs declare nothing (then checks over events cannot be checked for typos)."""
    out = {}
    for program in ("server", "client", "synflood"):
        module = _guest_module(program)
        events, common = getattr(module, "EVENTS", None), getattr(module.kernel, "COMMON_FIELDS", {}) \
            if hasattr(module, "kernel") else {}
        if not events:
            return None
        out[program] = {name: {"modes": spec.get("modes"), "fields": {**common, **LAB_FIELDS, **spec.get("fields", {})}}
                        for name, spec in events.items()}
    try:
        from .controller import events as controller_events
    except ImportError:
        return out
    common = getattr(controller_events, "COMMON_FIELDS", {})
    out["controller"] = {name: {"modes": None, "fields": {**common, **LAB_FIELDS, **spec.get("fields", {})}}
                         for name, spec in controller_events.EVENTS.items()}
    return out


def guest_arg_models():
    """{program: pydantic model of its arguments}, derived from each program's own parser (lab/guestschema.py)."""
    from .guestschema import args_model
    out = {}
    for program in ("server", "client", "synflood"):
        module = _guest_module(program)
        if hasattr(module, "build_parser"):
            out[program] = args_model(program, module.build_parser)
    return out


def check_guest_args(program, argv):
    """The guest's own argparse verdict on ARGV: None when fine, else its error line. No process is started."""
    import contextlib
    import io
    if program not in PROGRAMS:
        return f"unknown program (programs: {', '.join(PROGRAMS)})"
    module = _guest_module(program)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            module.parse_args(list(argv))
    except SystemExit:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        return lines[-1].split("error: ", 1)[-1] if lines else "invalid arguments"
    return None


def parsed_args(program, argv):
    """ARGV as PROGRAM's own parser reads it: {flag: value} with every default filled in, so that equal
    command lines compare equal however they were written. Raises LabError when the parser refuses it."""
    import contextlib
    import io
    module = _guest_module(program)
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
            namespace = module.parse_args(list(argv))
    except SystemExit:
        raise LabError(f"{program}: {err.getvalue().strip().splitlines()[-1:] or 'invalid arguments'}") from None
    return {k.replace("_", "-"): v for k, v in vars(namespace).items()}

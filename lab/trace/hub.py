"""One bpftrace process per lab process, shared by successive (and concurrent) runs.

Why shared: compiling the program costs bpftrace ~0.3 s of CPU (0.3-0.55 s to attached on this 2-core
machine), and stopping it ~0.7 s (it detaches its probes before END runs): per run, that is ~1 s of the
library's ~3 s per scenario, against a budget of 10%. One process started once and kept for the next runs
costs that once. The kernel side leaves out only the machine's own namespace; each run (a Tracer) registers
its hosts' namespace inodes, and the reader thread hands it the lines of those namespaces only.

Barrier: `barrier()` makes the tracer's own process fire the marker probes (program.py) and waits until
bpftrace has printed them and the counters that follow; every event the kernel emitted before the marker
has then been read (checked twice, across the per-CPU buffers). A run uses it at start (probes attached,
counter baseline) and at stop (everything up to now read, counters at the end).

Lifetime: bpftrace runs with `-p <this process>` and exits by itself within ~0.3 s when this process dies;
`shutdown()` (also at exit) stops every hub. tracefs is mounted only inside bpftrace's own mount namespace.
"""
import atexit
import os
import signal
import socket
import subprocess
import threading
import time

from . import kernel, program

_NOISE = ("couldn't set RLIMIT_MEMLOCK", "WARNING: Addrspace is not set")
# Counters are kept per namespace inode for the process's lifetime; the kernel reuses inodes, so the maps
# stay small, but a soak of 200-host runs must not hit bpftrace's default of 4096 keys per map.
_ENV = dict(os.environ, BPFTRACE_MAP_KEYS_MAX="65536")


class Hub:
    """A bpftrace process and the runs reading from it (views: objects with `inodes` and `add_line(line)`)."""

    def __init__(self, ports=(), rate=50000, probe_gap=0.001, include_root=False, start_timeout=180.0):
        self.ports = frozenset(int(p) for p in ports)
        self.rate, self.probe_gap, self.include_root = int(rate), float(probe_gap), include_root
        # Compiling and attaching takes 0.5 s here, but 60 s in a QEMU VM without KVM (LLVM runs emulated:
        # vm-check's bpftrace-timing.txt); bpftrace that died fails at once, so only a hung one waits this long.
        self.start_timeout = float(start_timeout)
        self.proc = None
        self.layout = {}
        self.views = {}                   # namespace inode -> view (None: every namespace, research mode)
        self.catch_all = None             # a view that takes every namespace
        self.stderr, self.stderr_count, self.lost = [], 0, 0
        self.attach_s = None
        self.args_struct = None           # the program's dialect, once started (program.py)
        self._cond = threading.Condition()
        self._markers = {}                # port -> {"first": t, "last": t, "done": t, "counters": {...}}
        self._collecting = None           # the marker port whose counters are being printed
        self._threads = []

    # -- process -----------------------------------------------------------------------------------------
    def start(self):
        """Start bpftrace and wait until its probes are attached. Raises kernel.TraceError.
        The program's dialect follows bpftrace's version; when bpftrace refuses it for the other one (the
        boundary comes from bpftrace's changelog, and reports differ for 0.19.0), the other is tried once."""
        first = kernel.args_are_struct()
        try:
            return self._start(first)
        except kernel.TraceError:
            if not program.dialect_refused("\n".join(self.stderr)):
                raise
        self.stderr, self.stderr_count = [], 0
        return self._start(not first)

    def _start(self, args_struct):
        plan = program.Plan(ports=self.ports, rate=self.rate, probe_gap=self.probe_gap, marker_pid=os.getpid(),
                            skip_inum=0 if self.include_root else kernel.netns_inode(), args_struct=args_struct)
        text, self.layout = program.generate(plan, kernel.offsets(), kernel.formats_by_tracepoint())
        t0 = time.monotonic()
        self.proc = subprocess.Popen(kernel.PRIVATE_TRACEFS + ["bpftrace", "-B", "line", "-p", str(os.getpid()),
                                                               "-e", text],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1, start_new_session=True, env=_ENV)
        self._threads = [threading.Thread(target=self._read_out, daemon=True, name="trace-hub-out"),
                         threading.Thread(target=self._read_err, daemon=True, name="trace-hub-err")]
        for t in self._threads:
            t.start()
        try:
            self.barrier(self.start_timeout, need_first=True)
        except kernel.TraceError:
            self.stop()
            raise
        self.attach_s = round(time.monotonic() - t0, 3)
        self.args_struct = args_struct
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGINT (bpftrace detaches its probes, ~0.7 s), then SIGKILL after 5 s. Never raises."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):    # the readers ended at EOF; the pipes are ours
            if stream is not None and not any(t.is_alive() for t in self._threads):
                stream.close()

    def missed(self):
        """Probe runs the kernel skipped, all programs together: a tracepoint hit while another BPF program
        runs on the same CPU is not traced (trace_call_bpf's recursion guard, counted in each program's
        fdinfo as recursion_misses). Machine-wide, so shared by the runs reading this hub."""
        total = 0
        try:
            fds = os.listdir(f"/proc/{self.proc.pid}/fd")
        except OSError:
            return None
        for fd in fds:
            try:
                if os.readlink(f"/proc/{self.proc.pid}/fd/{fd}") != "anon_inode:bpf-prog":
                    continue
                with open(f"/proc/{self.proc.pid}/fdinfo/{fd}") as f:
                    for line in f:
                        if line.startswith("recursion_misses:"):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return total

    def failure(self):
        """Why bpftrace is not running (its status and last error lines), or "" while it runs."""
        if self.alive():
            return ""
        code = self.proc.returncode if self.proc else None
        return f"bpftrace exited with status {code}: {' | '.join(self.stderr[-3:]) or 'no error output'}"

    # -- runs ----------------------------------------------------------------------------------------------
    def register(self, view):
        with self._cond:
            if view.inodes is None:
                self.catch_all = view
                return
            taken = set(view.inodes) & set(self.views)
            if taken:
                raise kernel.TraceError(f"namespaces {sorted(taken)} are already traced by another run")
            self.views.update({inum: view for inum in view.inodes})

    def unregister(self, view):
        with self._cond:
            if self.catch_all is view:
                self.catch_all = None
            self.views = {inum: v for inum, v in self.views.items() if v is not view}

    def idle(self):
        return not self.views and self.catch_all is None

    def barrier(self, timeout=5.0, need_first=False):
        """Fire a marker and wait for it: returns (its time, {(name, keys): value} counters printed with it).
        NEED_FIRST: both marker probes must have fired for the same connect() (all probes attached).
        Raises kernel.TraceError when bpftrace is gone or did not answer within TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        poked = []
        try:
            while True:
                port = _poke()          # again every 0.25 s: before the probes are attached, pokes go unseen
                poked.append(port)
                retry = time.monotonic() + 0.25
                with self._cond:
                    while True:
                        seen = self._markers.get(port, {})
                        if "done" in seen and ("first" in seen or not need_first):
                            return seen["last"], seen.get("counters", {})
                        if not self.alive():
                            raise kernel.TraceError(self.failure())
                        now = time.monotonic()
                        if now > deadline:
                            raise kernel.TraceError(f"bpftrace did not answer within {timeout:g} s"
                                                    + (f": {self.stderr[-1]}" if self.stderr else ""))
                        if now > retry:
                            break
                        self._cond.wait(0.02)
        finally:
            with self._cond:
                for port in poked:
                    self._markers.pop(port, None)

    # -- reader threads ------------------------------------------------------------------------------------
    def _read_out(self):
        for line in self.proc.stdout:
            what = program.classify(line)
            if what is None:
                continue
            if what[0] == "event":
                view = self.views.get(what[2]) or self.catch_all
                if view is not None:
                    view.add_line(line, what[1])
            elif what[0] == "marker":
                _m, tag, port, t = what
                with self._cond:
                    self._markers.setdefault(port, {})[tag] = t
                    if tag == "last":
                        self._collecting = port
                    elif tag == "done" and self._collecting == port:
                        self._collecting = None
                    self._cond.notify_all()
            elif what[0] == "counter" and self._collecting is not None:
                _c, name, keys, value = what
                self._markers[self._collecting].setdefault("counters", {})[(name, keys)] = value
            elif what[0] == "lost":
                self.lost += what[1]
        with self._cond:
            self._cond.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            if line.strip() and not any(n in line for n in _NOISE):
                self.stderr.append(line.rstrip()[:300])
                self.stderr_count += 1
                del self.stderr[:-50]


def _poke():
    """connect() from a socket bound to a fresh port, to 127.0.0.1's discard port: its SYN_SENT state
    change fires the marker probes. Returns the bound port, which names the marker."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", program.MARK_PORT))
        return port
    finally:
        s.close()


# -- the process's hubs ---------------------------------------------------------------------------------------
_hubs = []
_lock = threading.Lock()
_planned = frozenset()      # ports later runs of this process will ask for (plan())


def plan(ports):
    """Say which ports this process's runs will ask tcp_probe for (a suite: every scenario's), so that the first
    hub covers them all and later runs join it: one bpftrace compile per suite instead of one per new port
    (a compile takes 0.2 s here but about 60 s in a QEMU VM without KVM)."""
    global _planned
    _planned = frozenset(int(p) for p in ports)


def acquire(ports, include_root=False, rate=50000, probe_gap=0.001):
    """A running hub that covers PORTS (tcp_probe), started if needed. Raises kernel.TraceError.

    A hub with no runs whose ports do not cover PORTS is replaced by one covering both; a busy one is left
    alone and a second hub starts (two runs at once asking for different ports)."""
    ports = frozenset(ports)
    with _lock:
        for hub in list(_hubs):
            if not hub.alive():
                _hubs.remove(hub)
            elif (hub.include_root == include_root and ports <= hub.ports and hub.rate == rate
                  and hub.probe_gap == probe_gap):
                return hub
        if not include_root:
            ports |= _planned
        for hub in list(_hubs):
            if hub.idle() and hub.include_root == include_root:
                ports |= hub.ports
                hub.stop()
                _hubs.remove(hub)
        hub = Hub(ports, rate=rate, probe_gap=probe_gap, include_root=include_root).start()
        _hubs.append(hub)
        return hub


def shutdown():
    """Stop every hub of this process (also run at exit)."""
    with _lock:
        for hub in _hubs:
            hub.stop()
        _hubs.clear()


atexit.register(shutdown)

"""`tcplab cli`: Mininet's CLI with the lab's commands, each a thin do_* method over lab modules.

    counters HOST [--delta|--all]   non-zero TCP/IP counters, grouped: changes since the session
                                    started (default), since the last `counters HOST --delta`, or totals
    sockets HOST                    each TCP socket: queues, accept queue/backlog, tcp_info
    sysctl HOST [KEY[=VALUE]]       read or set a per-host sysctl (machine-wide keys are refused)
    sockconsole HOST                the interactive socket console inside HOST (quit to come back)
    guests | start NAME [OPTION ...] | events NAME | stop NAME
                                    (tcplab cli SCENARIO) the scenario's guests by hand; options after
                                    NAME are added to the guest's own, and win: start server --resume-after 300
"""
import shlex
import subprocess
import time

from mininet.cli import CLI

from . import counters, sockets
from . import sysctl as sysctls
from .network import read_host_sysctls, run_in
from .errors import LabError
from .guests import GuestProcess, guest_argv
from .scenario import substitute

LAB_HELP = __doc__.split("\n\n", 1)[1]


def format_counters(title, values):
    values = counters.nonzero({g: c for g, c in values.items() if g in counters.TCPIP_GROUPS})
    lines = [title]
    if not values:
        lines.append("  (no counter changed)")
    for group in counters.TCPIP_GROUPS:
        for name, value in sorted(values.get(group, {}).items()):
            note = counters.meaning(f"{group}.{name}")
            lines.append(f"  {group + '.' + name:<34} {value:>10}" + (f"  {note}" if note else ""))
    return "\n".join(lines)


def format_sockets(host, records):
    lines = [f"{host}: {len(records)} TCP sockets"]
    lines.append(f"  {'state':<10} {'local':<21} {'peer':<21} {'recv-q':>7} {'send-q':>7}  details")
    for r in records:
        if r.is_listener:
            detail = f"accept queue {r.accept_queue}/{r.backlog}"
        else:
            i = r.info
            detail = " ".join(f"{k} {i[k]}" for k in ("cwnd", "rtt", "snd_wnd", "rcv_space", "backoff", "retrans_total")
                              if k in i)
        lines.append(f"  {r.state:<10} {r.local:<21} {r.peer:<21} {r.recv_q:>7} {r.send_q:>7}  {detail}")
    return "\n".join(lines)


class LabConsole(CLI):
    """Mininet's CLI over a LabNetwork. Note: Mininet's CLI runs its loop from its constructor."""

    prompt = "tcplab> "

    def __init__(self, lab, scenario=None, **kwargs):
        self.lab = lab
        self.scenario = scenario
        self.running = {}
        self.baseline = {h: counters.read_host_counters(lab.host(h).pid) for h in lab.host_names()}
        self.last = dict(self.baseline)
        super().__init__(lab.net, **kwargs)

    def _host(self, name):
        try:
            return self.lab.host(name)
        except LabError as e:
            self.say(str(e))
            return None

    def say(self, text):
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def do_counters(self, line):
        """counters HOST [--delta|--all]: non-zero TCP/IP counters of HOST."""
        args = line.split()
        if not args:
            return self.say("usage: counters HOST [--delta|--all]")
        host = self._host(args[0])
        if host is None:
            return
        now = counters.read_host_counters(host.pid)
        if "--all" in args:
            title, values = f"{host.name}: counter totals", now
        elif "--delta" in args:
            title, values = f"{host.name}: changes since the last counters --delta", counters.delta(self.last[host.name], now)
            self.last[host.name] = now
        else:
            title, values = f"{host.name}: changes since the session started", counters.delta(self.baseline[host.name], now)
        self.say(format_counters(title, values))

    def do_sockets(self, line):
        """sockets HOST: TCP sockets of HOST with their queues."""
        host = self._host(line.strip()) if line.strip() else None
        if host is None:
            return self.say("usage: sockets HOST") if not line.strip() else None
        self.say(format_sockets(host.name, sockets.parse_ss(run_in(host, list(sockets.SS_ARGS)))))

    def do_sysctl(self, line):
        """sysctl HOST [KEY[=VALUE]]: read or set HOST's sysctls."""
        args = line.split()
        host = self._host(args[0]) if args else None
        if host is None:
            return self.say("usage: sysctl HOST [KEY[=VALUE]]") if not args else None
        try:
            if len(args) == 1:
                values = read_host_sysctls(host)
            elif "=" in args[1]:
                key, value = args[1].split("=", 1)
                self.lab.set_sysctls(host.name, {key: " ".join([value, *args[2:]])})
                values = read_host_sysctls(host, [key])
            else:
                sysctls.scope(args[1])
                values = read_host_sysctls(host, [args[1]])
        except LabError as e:
            return self.say(f"{host.name}: {e}")
        for key, value in values.items():
            self.say(f"{host.name}: {key} = {value}")

    def do_sockconsole(self, line):
        """sockconsole HOST: drive a socket by hand inside HOST."""
        host = self._host(line.strip()) if line.strip() else None
        if host is None:
            return self.say("usage: sockconsole HOST") if not line.strip() else None
        subprocess.call(["mnexec", "-a", str(host.pid), *guest_argv("sockconsole", ["--name", host.name])])

    def _guest_spec(self, name):
        if not self.scenario:
            self.say("no scenario: open one with `tcplab cli SCENARIO`")
            return None
        try:
            return self.scenario.guest(name)
        except StopIteration:
            self.say(f"no guest {name!r} (guests: {', '.join(g.name for g in self.scenario.guests)})")
            return None

    def do_guests(self, line):
        """guests: the scenario's guests and whether they run."""
        if not self.scenario:
            return self.say("no scenario: open one with `tcplab cli SCENARIO`")
        for g in self.scenario.guests:
            state = "running" if g.name in self.running and self.running[g.name].running() else \
                "exited" if g.name in self.running else "not started"
            self.say(f"  {g.name:<12} on {g.host:<8} {state:<12} {g.program} {' '.join(g.argv)}")

    def do_start(self, line):
        """start NAME [OPTION ...]: start one of the scenario's guests in its host; OPTIONs (the guest's own,
        see docs/guests.md) come after the scenario's, so they win: `start server --resume-after 300`."""
        try:
            words = shlex.split(line)
        except ValueError as e:
            return self.say(f"start: {e}")
        if not words:
            return self.say("usage: start NAME [OPTION ...]")
        name, *extra = words
        spec = self._guest_spec(name)
        if spec is None:
            return
        addresses = {h: self.lab.host(h).IP() for h in self.lab.host_names()}
        argv = substitute(spec.argv, addresses, time.monotonic()) + extra
        g = GuestProcess(spec.name, spec.host, spec.program, argv).start(self.lab)
        self.running[spec.name] = g
        if spec.ready and not g.wait_event(spec.ready, 5):
            return self.say(f"{spec.name} did not report {spec.ready}: {g.stderr.strip()[-200:]}")
        self.say(f"started {spec.name} on {spec.host}: {spec.program} {' '.join(argv)}")

    def do_events(self, line):
        """events NAME: the last events of a guest started here."""
        g = self.running.get(line.strip())
        if g is None:
            return self.say(f"{line.strip()!r} was not started here (start NAME first)")
        for e in g.events[-10:]:
            self.say("  " + " ".join(f"{k}={v}" for k, v in e.items() if k not in ("prog", "guest", "host")))

    def do_stop(self, line):
        """stop NAME: stop a guest started here (it prints its summary)."""
        g = self.running.get(line.strip())
        if g is None:
            return self.say(f"{line.strip()!r} was not started here")
        g.stop()
        summary = g.summary() or {}
        self.say(f"stopped {g.name}: " + " ".join(f"{k}={v}" for k, v in summary.items()
                                                 if k not in ("t", "prog", "event", "guest", "host")))

    def do_help(self, line):
        super().do_help(line)
        if not line:
            self.say("tcplab commands:\n" + LAB_HELP)

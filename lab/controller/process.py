"""The lab's side of the controller: start it with free loopback ports, talk to it, stop it."""
import json
import socket
import subprocess
import sys
import time

from ..errors import EnvironmentProblem, LabError
from ..guests import EventStream


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ControllerProcess(EventStream):
    """One controller for one run. `events` fills with its JSON lines (switch, rule, port-stats...)."""

    def __init__(self, stats_interval=0.5):
        super().__init__()
        self.stats_interval = stats_interval
        self.of_port = None
        self.ctl_port = None

    def start(self, record=None):
        self.of_port = free_port()
        self.attach(subprocess.Popen([sys.executable, "-m", "lab.controller", "--of-port", str(self.of_port),
                                      "--stats-interval", str(self.stats_interval)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True))
        if record is not None:
            record.add_process(self.proc.pid, "controller")
        ready = self.wait_event("control", 20)
        if not ready:
            self.stop()
            raise EnvironmentProblem("the os-ken controller did not start: " + self.stderr[-600:])
        self.ctl_port = ready["port"]
        return self

    def wait_switches(self, count, timeout=20):
        """Wait until COUNT switches have connected; raise naming what is missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            connected = {e["dpid"] for e in list(self.events) if e["event"] == "switch"}
            if len(connected) >= count:
                return connected
            time.sleep(0.05)
        raise LabError(f"only {len(connected)} of {count} switches connected to the controller in {timeout:g} s")

    def command(self, **request):
        with socket.create_connection(("127.0.0.1", self.ctl_port), timeout=5) as s, s.makefile("rw") as f:
            f.write(json.dumps(request) + "\n")
            f.flush()
            answer = json.loads(f.readline())
        if not answer.get("ok"):
            raise LabError(f"controller refused {request}: {answer.get('error')}")
        return answer

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

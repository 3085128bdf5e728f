"""The lab's side of the controller: start it with free loopback ports, talk to it, stop it."""
import json
import socket
import subprocess
import sys
import threading
import time

from ..errors import EnvironmentProblem, LabError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ControllerProcess:
    """One controller for one run. `events` fills with its JSON lines (switch, rule, port-stats...)."""

    def __init__(self, stats_interval=0.5):
        self.stats_interval = stats_interval
        self.of_port = None
        self.ctl_port = None
        self.proc = None
        self.events = []
        self.stderr = []
        self._cond = threading.Condition()

    def start(self, record=None):
        self.of_port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "lab.controller", "--of-port", str(self.of_port),
                                     "--stats-interval", str(self.stats_interval)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        if record is not None:
            record.add_process(self.proc.pid, "controller")
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        ready = self.wait_event(lambda e: e["event"] == "control", 20)
        if not ready:
            self.stop()
            raise EnvironmentProblem("the os-ken controller did not start: " + "".join(self.stderr)[-600:])
        self.ctl_port = ready["port"]
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        self.proc.stdout.close()

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            del self.stderr[:-50]
        self.proc.stderr.close()

    def wait_event(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if predicate(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(min(left, 0.1))

    def wait_switches(self, count, timeout=20):
        """Wait until COUNT switches have connected; raise naming what is missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                connected = {e["dpid"] for e in self.events if e["event"] == "switch"}
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

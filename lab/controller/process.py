"""The lab's side of the controller: start it with a free loopback OpenFlow port and a private control
channel, talk to it, stop it."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import EnvironmentProblem, LabError
from ..guests import EventStream
from ..runrecord import process_start_time
from . import protocol
from .channel import LineTooLong, read_lines

ANSWER_TIMEOUT = 5.0


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
        self.ctl_path = None
        self._private_dir = None

    def start(self, record=None):
        """Start it for RECORD's run: the channel is RUN_DIR/RUNID.ctl and only this process may use it.
        Without a record (a bare controller), the channel goes in a private temporary directory."""
        if record is not None:
            self.ctl_path = record.control_socket
            owner_pid, owner_start = record.owner_pid, record.owner_start
        else:
            self._private_dir = tempfile.mkdtemp(prefix="tcplab-ctl-")
            self.ctl_path = Path(self._private_dir) / "controller.ctl"
            owner_pid, owner_start = os.getpid(), process_start_time(os.getpid())
        self.of_port = free_port()
        self.attach(subprocess.Popen([sys.executable, "-m", "lab.controller", "--of-port", str(self.of_port),
                                      "--ctl-socket", str(self.ctl_path), "--owner-pid", str(owner_pid),
                                      "--owner-start", str(owner_start),
                                      "--stats-interval", str(self.stats_interval)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True))
        if record is not None:
            record.add_process(self.proc.pid, "controller")
        if not self.wait_event("control", 20):
            self.stop()
            raise EnvironmentProblem("the os-ken controller did not start: " + self.stderr[-600:])
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
        """Send one request (None values mean "not given") and return its answer; LabError when refused."""
        try:
            line = protocol.request_line(**request)
        except protocol.ProtocolError as e:
            raise LabError(f"controller request {request}: {e}") from None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(ANSWER_TIMEOUT)
                s.connect(str(self.ctl_path))
                s.sendall(line)
                reply = next(read_lines(s.recv), b"")
        except (OSError, LineTooLong) as e:
            raise LabError(f"controller request {request}: no answer on {self.ctl_path}: {e}") from None
        try:
            answer = json.loads(reply)
        except ValueError:
            raise LabError(f"controller request {request}: unreadable answer {reply[:200]!r}") from None
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
        # The controller removes its socket on SIGTERM; after a SIGKILL it is left: remove it here.
        if self.ctl_path is not None and self.ctl_path.is_socket():
            self.ctl_path.unlink(missing_ok=True)
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None

"""Guests forked from one loaded interpreter (guest/launcher.py) instead of exec'd one by one through mnexec.

A guest started through mnexec costs ~40 ms of CPU (mnexec, Python's start, the program's imports): at a
1000-client storm on 2 cores that is most of the wall time. The launcher, one per run, pays it once and forks
each guest into its host's namespaces. What the lab holds for each guest is a LaunchedProcess, which answers
the part of subprocess.Popen the lab uses (pid, stdout, stderr, poll, wait, send_signal, kill, returncode).

Teardown needs nothing new: the launcher carries the run's TCPLAB_RUN marker (its children inherit it in
/proc/PID/environ, as an exec'd guest's), the guests live in their hosts' namespaces, and both are recorded.
"""
import collections
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from ..errors import LabError
from ..guests import GUEST_DIR


def _kill_and_close(pidfd):
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


class LaunchedProcess:
    """One guest forked by the launcher: the Popen interface the lab's guests use, plus `ended`.

    The pidfd (the launcher opened it before it could reap the child) says when the process has ended; the
    exit status comes from the launcher, its parent, a moment later. Were the launcher killed first, the
    status would stay None: unknown, not made up; `ended` still says the guest is gone (poll() cannot, as
    Popen's None means "running")."""

    def __init__(self, launcher, pid, pidfd, stdout, stderr):
        self.launcher, self.pid, self.stdout, self.stderr = launcher, pid, stdout, stderr
        self.args = None
        self._pidfd = pidfd
        self._status = None            # cached once known: a later guest may reuse the PID

    @property
    def ended(self):
        return self._check(0)

    @property
    def returncode(self):
        if self._status is None and self._pidfd is None:
            self._status = self.launcher.status(self.pid)
        return self._status

    def _check(self, timeout):
        """True once the process has ended, waiting up to TIMEOUT seconds (None: for ever)."""
        if self._pidfd is None:
            return True
        poller = select.poll()           # not select(): at a storm's scale descriptors pass 1024
        poller.register(self._pidfd, select.POLLIN)
        if not poller.poll(None if timeout is None else max(0, int(timeout * 1000))):
            return False
        os.close(self._pidfd)
        self._pidfd = None
        return True

    def poll(self):
        return self.returncode if self._check(0) else None

    def wait(self, timeout=None):
        if not self._check(timeout):
            raise subprocess.TimeoutExpired(f"guest {self.pid}", timeout)
        if self.returncode is None:
            self.launcher.wait_status(self.pid, 1.0)     # the exit report follows the exit by a moment
        return self.returncode

    def send_signal(self, sig):
        # Through the pidfd, while it is open: once the process has ended its PID may be another's.
        if not self._check(0):
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


class GuestLauncher:
    """The run's launcher process and the socket to it. start() once; launch() per guest."""

    def __init__(self, env):
        self.env = env              # the launcher's environment: the run's marker is in it
        self.proc = None
        self.sock = None
        self._lock = threading.Lock()        # one request in flight: replies come in order
        self._cond = threading.Condition()
        self._replies = {}
        self._statuses = {}
        self._next_id = 0
        self._abandoned = set()     # requests whose answer came too late: their guests are killed
        self._closed = False
        self._stderr = collections.deque(maxlen=40)   # the launcher's own stderr, read as it comes

    def start(self, timeout=10.0):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-u", str(GUEST_DIR / "launcher.py"), str(theirs.fileno())], env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self.sock = ours
        ours.settimeout(timeout)
        try:
            hello = json.loads(ours.recv(65536) or b"{}")
        except (OSError, ValueError):
            hello = {}
        if "ready" not in hello:
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            self.proc.wait(5)
            raise LabError(f"the guest launcher did not start: {err.strip()[-400:] or 'no answer'}")
        ours.settimeout(None)
        threading.Thread(target=self._read, daemon=True, name="launcher-replies").start()
        # Drained all along: a full pipe would block the launcher (and with it every later launch).
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True, name="launcher-stderr")
        self._stderr_reader.start()
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self._stderr.append(line.decode(errors="replace"))

    def _read(self):
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 65536, 1)
                for fd in fds:      # Python 3.11's recv_fds drops its flags argument (MSG_CMSG_CLOEXEC)
                    os.set_inheritable(fd, False)
            except OSError:
                msg, fds = b"", []
            if not msg:
                break
            reply = json.loads(msg)
            with self._cond:
                if "exit" in reply:
                    self._statuses[reply["exit"]] = reply["status"]
                elif reply.get("id") in self._abandoned:
                    self._abandoned.discard(reply["id"])
                    for fd in fds:          # its launch gave up waiting: nobody holds this guest
                        _kill_and_close(fd)
                else:
                    # A PID seen again is a new process: an old status under it is not this one's (the
                    # launcher answers a launch before it can report that child's exit).
                    self._statuses.pop(reply.get("pid"), None)
                    reply["pidfd"] = fds[0] if fds else None
                    self._replies[reply["id"]] = reply
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def launch(self, host_pid, program, args, env=None, timeout=10.0):
        """Fork PROGRAM ARGS into the namespaces of the host whose shell is HOST_PID; a LaunchedProcess."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            with self._lock:
                self._next_id += 1
                rid = self._next_id
                request = {"id": rid, "host_pid": host_pid, "program": program, "args": [str(a) for a in args],
                           "env": env or {}}
                try:
                    socket.send_fds(self.sock, [json.dumps(request).encode()], [out_w, err_w])
                except OSError as e:
                    raise LabError(f"the guest launcher is gone ({e}): {self._why_gone()}") from None
                reply = self._reply(rid, timeout)
        finally:
            os.close(out_w)
            os.close(err_w)
        if "pid" not in reply or reply.get("pidfd") is None:
            os.close(out_r)
            os.close(err_r)
            why = self._why_gone() if self._closed else ""
            raise LabError(f"the guest launcher refused {program}: {reply.get('error', 'no answer')} {why}".strip())
        return LaunchedProcess(self, reply["pid"], reply["pidfd"], open(out_r, encoding="utf-8", errors="replace"),
                               open(err_r, encoding="utf-8", errors="replace"))

    def _why_gone(self):
        try:
            code = self.proc.wait(2)
        except subprocess.TimeoutExpired:
            return "it is still running"
        time.sleep(0.1)              # the stderr reader's last lines
        err = "".join(self._stderr).strip()
        return f"it exited with status {code}: {err[-600:] or 'nothing on stderr'}"

    def _reply(self, rid, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while rid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    self._abandoned.add(rid)
                    return {"error": "the launcher ended" if self._closed else f"no answer in {timeout:.0f} s"}
                self._cond.wait(left)
            return self._replies.pop(rid)

    def wait_status(self, pid, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while pid not in self._statuses and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def status(self, pid):
        with self._cond:
            return self._statuses.get(pid)

    def stop(self):
        """Close the socket (the launcher exits at EOF) and reap it. Its guests are the teardown's."""
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self._stderr_reader.join(2)        # at EOF: the launcher is gone
            if not self._stderr_reader.is_alive():
                self.proc.stderr.close()

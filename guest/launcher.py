"""The guest launcher: one interpreter with the guest programs loaded, forking one child per guest.

Starting a guest the plain way costs a process of mnexec, an exec of Python and the imports of the guest
program: ~40 ms of CPU each, which at 1000 guests on 2 cores is most of a storm's wall time. The launcher
pays that once; each guest is then a fork() (copy-on-write, ~1-2 ms) that enters its host's network and
mount namespaces exactly as `mnexec -da PID` does (setns, then setsid) and calls the program's main().

The lab talks to it over a SOCK_SEQPACKET socket whose fd is its argument (lab/network/launcher.py), one message each way:
  lab -> launcher: {"id": N, "host_pid": P, "program": "client", "args": [...], "env": {...}}
                   with the guest's stdout and stderr write ends attached (SCM_RIGHTS)
  launcher -> lab: {"id": N, "pid": CHILD, "entered": true} with a pidfd of it attached, once the child is
                   inside the host ("entered": false: it could not enter, and ends), or {"id": N, "error": "..."};
                   {"exit": CHILD, "status": S} once it has ended and been reaped
   (S as in subprocess: the exit code, or -SIGNAL)
Standard library only; it runs in the machine's namespace and opens no socket but the one it was given.
"""
import ctypes
import json
import os
import select
import signal
import socket
import sys
import traceback

import client
import server
import synflood

PROGRAMS = {"server": server, "client": client, "synflood": synflood}
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def enter_host(host_pid):
    """Join HOST_PID's network namespace, then its mount namespace (mnexec -a: its /sys shows the host's
    interfaces), then a session of our own (mnexec -d: a Ctrl-C at the lab's terminal never reaches us)."""
    for kind, flag in (("net", CLONE_NEWNET), ("mnt", CLONE_NEWNS)):
        fd = os.open(f"/proc/{host_pid}/ns/{kind}", os.O_RDONLY)
        try:
            if _libc.setns(fd, flag) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({kind} of {host_pid}): {os.strerror(err)}")
        finally:
            os.close(fd)
    os.setsid()


def run_child(request, out_fd, err_fd, entered_fd, to_close):
    """In the forked child: become the guest and never return. A byte on ENTERED_FD once inside the host."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in to_close:
            os.close(fd)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        cwd = os.getcwd()
        enter_host(request["host_pid"])
        try:
            os.chdir(cwd)                # joining a mount namespace moves us to its root; mnexec goes back too
        except OSError:
            pass
        os.write(entered_fd, b"1")
        os.close(entered_fd)
        os.environ.update(request.get("env") or {})
        module = PROGRAMS[request["program"]]
        sys.argv = [module.__file__, *request["args"]]
        try:
            code = module.main(list(request["args"]))
        except SystemExit as e:          # argparse refusing the arguments (2), sys.exit() in a guest
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:                # what an exec'd guest would print before dying
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def launch(ctl, request, fds, wake_fds):
    """Fork the guest REQUEST asks for: (reply, pidfd or None). Never raises: a fork, pipe or pidfd that
    fails (a pids limit, no descriptors left) costs that one guest, as a failed exec would."""
    if request.get("program") not in PROGRAMS or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return {"id": request.get("id"), "error": f"bad request: program {request.get('program')!r}, {len(fds)} fds"}, None
    try:
        entered_r, entered_w = os.pipe()
    except OSError as e:
        for fd in fds:
            os.close(fd)
        return {"id": request["id"], "error": f"pipe: {e}"}, None
    try:
        pid = os.fork()
    except OSError as e:
        for fd in (*fds, entered_r, entered_w):
            os.close(fd)
        return {"id": request["id"], "error": f"fork: {e}"}, None
    if pid == 0:
        run_child(request, fds[0], fds[1], entered_w, [ctl.fileno(), entered_r, *wake_fds])
    for fd in (*fds, entered_w):
        os.close(fd)
    # A pidfd opened here, before this loop can reap the child, always names it: the lab waits and signals
    # through it, so no PID reused after the reaping is ever hit.
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as e:                 # no descriptor to hold it by: it must not run unheld
        os.kill(pid, signal.SIGKILL)     # our own unreaped child: the PID cannot be another's yet
        os.close(entered_r)
        return {"id": request["id"], "error": f"pidfd_open: {e}"}, None
    # The answer waits until the child is inside its host (or has failed to enter it, said on its stderr):
    # whatever the lab then sees of that PID is the guest's, in its host.
    entered = os.read(entered_r, 1) == b"1"
    os.close(entered_r)
    return {"id": request["id"], "pid": pid, "entered": entered}, pidfd


def reap():
    """Every ended child as {"exit": pid, "status": code or -signal}."""
    out = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append({"exit": pid, "status": os.waitstatus_to_exitcode(status)})


def serve(ctl):
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)       # a handler, so that the wakeup fd is written
    ctl.sendmsg([json.dumps({"ready": os.getpid()}).encode()])
    poller = select.poll()             # not select(): the lab's descriptor numbers pass 1024 at storm scale
    poller.register(ctl, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if wake_r in ready:
            os.read(wake_r, 4096)
        replies = []
        if ctl.fileno() in ready:
            try:
                msg, fds, _, _ = socket.recv_fds(ctl, 65536, 4)
            except OSError:
                msg, fds = b"", []
            if not msg:                  # the lab is gone: so are we (its teardown ends our children)
                return
            try:
                request = json.loads(msg)
            except ValueError:
                request = {}
            replies.append(launch(ctl, request, fds, [wake_r, wake_w]))
        replies += [(exit_report, None) for exit_report in reap()]
        for reply, pidfd in replies:
            if pidfd is None:
                ctl.sendmsg([json.dumps(reply).encode()])
            else:
                socket.send_fds(ctl, [json.dumps(reply).encode()], [pidfd])
                os.close(pidfd)


def main():
    ctl = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(ctl)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

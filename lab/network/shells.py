"""Node shells that start together and cannot hang.

Mininet starts a node's shell (`mnexec -cdn env PS1=\\177 bash ...` on a pty) and reads until the prompt
character, with no time limit: when the shell cannot start (mnexec refused, as in a plain chroot), its
error lands on the pty, the prompt never comes, and Mininet waits for ever. It also starts shells one at a
time, each waiting for its prompt, then sends one more command each (`stty -echo ...`) and waits again.

Here each shell is spawned with Mininet's own command and its set-up line written at once; the shells of a
whole network are then waited for together (one poll over all ptys), with a time limit. A shell that exits
or does not answer in time is an error naming the node, the command and what it printed; the shells
already spawned are the caller's to remove (LabNetwork.stop() does, by the run record).
"""
import codecs
import os
import pty
import select
import time

from ..errors import LabError

PROMPT = chr(127)
SETUP = "unset HISTFILE; stty -echo; set +m\n"   # what Mininet sends each shell after its first prompt
PER_NODE_S = 0.02      # the time limit grows with the network: 200 hosts get 9 s, 1000 get 25 s
MIN_WAIT_S = 5.0


class ShellStartError(LabError):
    """A node's shell did not start (the command failed, or no prompt came in time)."""


def shell_command(node, mnopts=None):
    """Mininet's command for NODE's shell (mininet/node.py Node.startShell, 2.3.0)."""
    opts = "-cd" if mnopts is None else mnopts
    if node.inNamespace:
        opts += "n"
    return ["mnexec", opts, "env", "PS1=" + PROMPT, "bash", "--norc", "--noediting", "-is", "mininet:" + node.name]


def spawn(node, mnopts=None):
    """Start NODE's shell the way Mininet does, without waiting for its prompt; send its set-up line."""
    if node.shell:
        return
    node.master, node.slave = pty.openpty()
    node.shell = node._popen(shell_command(node, mnopts), stdin=node.slave, stdout=node.slave,
                             stderr=node.slave, close_fds=False)
    node.stdin = os.fdopen(node.master, "r")
    node.stdout = node.stdin
    node.pid = node.shell.pid
    node.pollOut = select.poll()
    node.pollOut.register(node.stdout)
    node.outToNode[node.stdout.fileno()] = node
    node.inToNode[node.stdin.fileno()] = node
    node.execed = False
    node.lastCmd = None
    node.lastPid = None
    node.readbuf = ""
    # Mininet's decoder is strict UTF-8: one stray byte in a command's output (its controller check's telnet
    # printing an OpenFlow hello) raised UnicodeDecodeError out of Mininet and ended the whole run.
    node.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    node.waiting = True
    node.starting = True
    node._shell_output = ""
    # Typed ahead: the tty holds the line until bash reads it after its first prompt; a second prompt
    # then says it ran.
    node.write(SETUP)


def wait_shells(nodes, timeout=None):
    """Wait until every node's shell has shown its second prompt (set-up done), all at once. Raises
    ShellStartError naming each node whose shell exited or stayed silent past TIMEOUT seconds."""
    waiting = {node.stdout.fileno(): node for node in nodes if node.waiting}
    if timeout is None:
        timeout = MIN_WAIT_S + PER_NODE_S * len(waiting)
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in waiting:
        poller.register(fd, select.POLLIN)
    failed = []
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(min(left, 0.1) * 1000):
            node = waiting.get(fd)
            if node is None:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            node._shell_output += node.decoder.decode(data)
            if node._shell_output.count(PROMPT) >= 2:
                node.waiting = node.starting = False
                node.readbuf = ""
                poller.unregister(fd)
                del waiting[fd]
        for fd, node in list(waiting.items()):
            if node.shell.poll() is not None:        # exited: mnexec or bash refused to start
                failed.append((node, f"exited with status {node.shell.returncode}"))
                poller.unregister(fd)
                del waiting[fd]
    failed += [(node, f"gave no prompt within {timeout:.0f} s") for node in waiting.values()]
    if failed:
        raise ShellStartError(describe(failed))


def describe(failed):
    lines = []
    for node, why in failed[:5]:
        command = " ".join(shell_command(node)).replace(PROMPT, "\\177")
        said = node._shell_output.replace(PROMPT, "").replace(SETUP.strip(), "").strip()
        lines.append(f"{node.name}: its shell did not start: `{command}` {why}: {said[-300:] or 'no output'}")
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    return "; ".join(lines) + more


def stop_unstarted(nodes):
    """Kill the shells of NODES that never came up (our own children: by their Popen), and reap them."""
    for node in nodes:
        if node.shell and getattr(node, "starting", False):
            if node.shell.poll() is None:
                node.shell.kill()
            node.shell.wait(5)
            node.stdin.close()
            os.close(node.slave)
            node.shell = None


class FastShell:
    """Mixin for Mininet node classes: a shell whose start is bounded in time. With DEFER set on the
    class, construction only spawns; wait_shells() then waits for a whole network's shells at once."""

    defer = False
    starting = False

    def sendCmd(self, *args, **kwargs):  # noqa: N802
        # A command before the shell's prompt (a switch's `ifconfig lo up` at construction): wait for it.
        if self.starting:
            try:
                wait_shells([self])
            except ShellStartError:
                stop_unstarted([self])
                raise
        return super().sendCmd(*args, **kwargs)

    def startShell(self, mnopts=None):  # noqa: N802 (Mininet's API)
        if self.shell:
            return
        spawn(self, mnopts)
        if not type(self).defer:
            try:
                wait_shells([self])
            except ShellStartError:
                stop_unstarted([self])
                raise

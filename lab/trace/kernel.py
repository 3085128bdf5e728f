"""What the running kernel offers the tracer: the tracepoints' format files, struct offsets from BTF, the
drop-reason names, kernel symbols, and whether tracing is possible at all (`available()`, never raises).

tracefs: bpftrace and the format files need /sys/kernel/tracing. Where systemd has mounted it (Debian's
stock systems, the VM of scripts/vm-check.sh), that mount is used. Where it is not mounted (as on this
machine), it is mounted inside a private mount namespace of the process that needs it (`unshare -m`),
so the machine's own mounts are never changed. (Mounting a second tracefs over systemd's fails on 6.1.)
"""
import bisect
import os
import shutil
import subprocess
from functools import lru_cache

from . import btf, formats, program

TRACEFS = "/sys/kernel/tracing"
# A fixed script: mount tracefs privately, then run the arguments. Nothing read from a file reaches it.
PRIVATE_TRACEFS = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f'[ -d {TRACEFS}/events ] || mount -t tracefs tracefs {TRACEFS} || exit 3; exec "$@"', "sh"]
INSTALL_HINT = "apt install bpftrace (scripts/install.sh installs it)"


class TraceError(RuntimeError):
    """Tracing is impossible here, or the tracer failed; the message says why (bpftrace's error included)."""


@lru_cache(maxsize=1)
def formats_by_tracepoint():
    """{"skb:kfree_skb": Format, ...} for program.TRACEPOINTS, read through a private tracefs mount.
    Raises TraceError naming the format file that could not be read."""
    script = 'for f; do echo "=== $f"; cat "' + TRACEFS + '/events/$f/format" || exit 3; done'
    names = [tp.replace(":", "/") for tp in program.TRACEPOINTS]
    try:
        proc = subprocess.run(PRIVATE_TRACEFS + ["sh", "-c", script, "sh", *names], capture_output=True, text=True,
                              timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TraceError(f"cannot read tracefs: {e}") from None
    if proc.returncode != 0:
        raise TraceError(f"cannot read the tracepoints' format files under {TRACEFS}: {why_failed(proc.stderr)}")
    return formats.parse_many(proc.stdout)


def why_failed(stderr):
    """The lines of a failed command's error output that say why, on one line (mount's hint to read dmesg
    is left out: it says nothing)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.strip().startswith("dmesg(1)")]
    return "; ".join(lines)[-400:] or "no error output"


@lru_cache(maxsize=1)
def args_are_struct():
    """True when this bpftrace treats a tracepoint's `args` as a struct (program.py's two dialects).
    Raises TraceError when bpftrace does not say its version."""
    try:
        out = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True, timeout=10).stdout
        return program.args_are_struct(out)
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        raise TraceError(f"cannot tell bpftrace's version: {e}") from None


@lru_cache(maxsize=1)
def offsets():
    """program.OFFSET_PATHS resolved on this kernel's BTF. Raises OSError, btf.BTFError."""
    b = btf.load()
    return {key: b.offset(path) for key, path in program.OFFSET_PATHS.items()}


@lru_cache(maxsize=1)
def tables():
    """{"drop": {n: REASON}, "reset": {n: REASON}}: the kernel's own names, from the format files."""
    fmts = formats_by_tracepoint()
    out = {"drop": formats.symbol_table(fmts["skb:kfree_skb"].print_fmt, "reason")}
    if fmts["tcp:tcp_send_reset"].has("reason"):
        out["reset"] = formats.symbol_table(fmts["tcp:tcp_send_reset"].print_fmt, "reason")
    return out


@lru_cache(maxsize=1)
def _kallsyms():
    """Sorted kernel text symbols, read once (~0.1 s) and only when a drop's function is asked for."""
    pairs = []
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in "tT":
                pairs.append((int(parts[0], 16), parts[2]))
    pairs.sort()
    return [a for a, _n in pairs], [n for _a, n in pairs]


def symbolize(addr):
    """A kernel text address -> the function holding it ("tcp_v4_rcv"), or its hex when unknown."""
    try:
        addrs, names = _kallsyms()
    except OSError:
        return hex(addr)
    i = bisect.bisect_right(addrs, addr) - 1
    return names[i] if i >= 0 and addrs[i] else hex(addr)


def netns_inode(pid="self"):
    """The network namespace inode of process PID (a lab host's shell: lab.host(name).pid)."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def available():
    """(True, "") when this process can trace, else (False, why, with the fix). Never raises."""
    if os.geteuid() != 0:
        return False, "not root: attaching BPF programs needs root"
    for cmd, fix in (("bpftrace", INSTALL_HINT), ("unshare", "apt install util-linux")):
        if not shutil.which(cmd):
            return False, f"{cmd} is not on PATH: {fix}"
    if not os.path.exists(btf.VMLINUX):
        return False, f"no kernel BTF at {btf.VMLINUX} (the kernel needs CONFIG_DEBUG_INFO_BTF=y)"
    try:
        off = offsets()
    except (OSError, btf.BTFError) as e:
        return False, f"kernel BTF unusable: {e}"
    try:
        fmts = formats_by_tracepoint()
        tables()
        program.generate(program.Plan(ports={1}, args_struct=args_are_struct()), off, fmts)   # every field exists
    except (TraceError, formats.FormatError) as e:
        return False, str(e)
    except Exception as e:  # noqa: BLE001 (available() promises not to raise: anything else is a reason too)
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def limits():
    """What this kernel's tracepoints cannot show, as sentences ([] when nothing). Raises TraceError."""
    limit = program.probe_limit(formats_by_tracepoint())
    return [limit] if limit else []


def check():
    """For `tcplab doctor`: (status "OK"/"WARN", detail, fix). Never raises."""
    ok, why = available()
    if ok:
        detail = "kernel event stream available (bpftrace, BTF, tracepoints)"
        return "OK", detail + "".join(f"; but {limit}" for limit in limits()), ""
    return "WARN", f"kernel event stream unavailable: {why}; runs go on without it", (
        INSTALL_HINT if "bpftrace" in why else "")

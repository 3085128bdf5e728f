"""The run record: what one lab run created, written down before it is created.

A record lives in RECORD_DIR (/run/tcplab, root-owned, mode 0700) as RUNID.json, with a RUNID.pids journal
of the PIDs it started; every file a run keeps there is named RUNID.* (the controller's RUNID.ctl socket
too). It names the run's switches and their root-namespace interfaces (names that carry the run id), the
PIDs the run started (each with its start time, so a reused PID is never mistaken for ours) and the
machine's sysctls as they were. `tcplab cleanup` reads the records of dead runs and removes exactly what
they name.

A record is data read back from a file that any bug or crash could have damaged: it is validated before
anything in it is used (load() raises RecordError), and a record that fails is reported and skipped, never
acted on.
"""
import json
import os
import re
import secrets
import stat
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import LabError

RECORD_DIR = Path(os.environ.get("TCPLAB_RUN_DIR", "/run/tcplab"))
_ALPHABET = string.ascii_lowercase + string.digits
RUN_ID = re.compile(r"t[a-z0-9]{3}")
# A Linux interface name: at most 15 bytes, no '/', ':' or whitespace; the lab's use letters, digits, '-'.
_IFNAME_TAIL = re.compile(r"[a-z0-9][a-z0-9_.-]*")
# A guarded machine sysctl holds one to four numbers or names (a congestion control: "cubic").
_SYSCTL_VALUE = re.compile(r"[0-9a-z_]{1,20}( [0-9a-z_]{1,20}){0,3}")
_MAX_ENTRIES = 100_000


class RecordError(LabError):
    """A run record that cannot be trusted (bad JSON, wrong types, names that are not the run's)."""


def process_start_time(pid):
    """The start time (clock ticks since boot) of PID, or None when it is gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: the fields after the last ')' are fixed.
    fields = stat_line.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):   # a zombie holds no namespace or socket: it is gone for our purposes
        return None
    return int(fields[19])


def same_process(pid, start_time):
    """True when PID is still the process that was recorded (not a reused PID)."""
    return start_time is not None and process_start_time(pid) == start_time


def run_dir(create=True):
    """RECORD_DIR, created root-owned 0700 if absent; LabError if it is not ours alone (another owner,
    group/other permissions, not a directory): records there decide what cleanup kills and deletes."""
    path = RECORD_DIR
    if create and not os.path.lexists(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise LabError(f"{path}: the run directory is not a directory; remove it (tcplab recreates it)")
    if st.st_uid != 0 or st.st_mode & 0o077:
        raise LabError(f"{path}: the run directory must be owned by root with mode 0700 (it has owner uid "
                       f"{st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}): anyone who can write there decides "
                       f"what cleanup kills; fix it with: chown root:root {path} && chmod 0700 {path}")
    return path


def _write_private(path, text, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _ifname(name, run_id, what):
    if not (isinstance(name, str) and name.startswith(run_id) and len(name.encode()) <= 15
            and _IFNAME_TAIL.fullmatch(name[len(run_id):])):
        raise RecordError(f"{what} {name!r}: not an interface name of run {run_id} (must start with the run id, "
                          "at most 15 characters of a-z, 0-9, '-', '_', '.')")
    return name


def _check_pid(pid, start, what):
    if type(pid) is not int or pid <= 1 or type(start) is not int or start < 0:
        raise RecordError(f"{what}: PID {pid!r} with start time {start!r}: expected a PID above 1 and its "
                          "start time in clock ticks")


@dataclass
class RunRecord:
    run_id: str
    owner_pid: int
    owner_start: int
    purpose: str = ""
    switches: list = field(default_factory=list)         # kernel names (run id inside)
    ovs_bridges: list = field(default_factory=list)
    root_interfaces: list = field(default_factory=list)  # root-namespace interfaces, recorded before creation
    processes: dict = field(default_factory=dict)        # "pid" -> {"start": ticks, "role": "host h1"}
    machine_sysctls: dict = field(default_factory=dict)  # guarded keys as they were before the run
    machine_run_values: dict = field(default_factory=dict)  # what the run itself could have written there

    @property
    def path(self):
        return RECORD_DIR / f"{self.run_id}.json"

    @classmethod
    def create(cls, purpose=""):
        """A new record with a run id no live record uses, already on disk."""
        directory = run_dir()
        for _ in range(100):
            run_id = "t" + "".join(secrets.choice(_ALPHABET) for _ in range(3))
            path = directory / f"{run_id}.json"
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                continue
            os.close(fd)
            record = cls(run_id, os.getpid(), process_start_time(os.getpid()), purpose)
            record.save()
            return record
        raise LabError(f"no free run id in {directory}: remove stale records with `tcplab cleanup`")

    def save(self):
        tmp = RECORD_DIR / f"{self.run_id}.tmp"
        _write_private(tmp, json.dumps(asdict(self), indent=1), os.O_TRUNC)
        tmp.replace(self.path)

    @property
    def journal(self):
        """PIDs as they are started: one appended line each (a rewrite per host would cost O(n^2))."""
        return RECORD_DIR / f"{self.run_id}.pids"

    def add_process(self, pid, role):
        self.add_processes([(pid, role)])

    def add_processes(self, items):
        """Journal several (pid, role) at once: one write for a whole batch of hosts."""
        lines = []
        for pid, role in items:
            start = process_start_time(pid)
            if start is None:
                continue            # already gone (a shell that failed to start): nothing to remove later
            self.processes[str(pid)] = {"start": start, "role": role}
            lines.append(json.dumps([pid, start, role]) + "\n")
        _write_private(self.journal, "".join(lines), os.O_APPEND)

    def owner_alive(self):
        return same_process(self.owner_pid, self.owner_start)

    @property
    def control_socket(self):
        """The controller's control channel (lab/controller/channel.py); left behind when it was SIGKILLed."""
        return RECORD_DIR / f"{self.run_id}.ctl"

    def files(self):
        """Every file this run keeps in the run directory (RUNID.json, .pids, .tmp, .ctl, ...)."""
        return sorted(RECORD_DIR.glob(f"{self.run_id}.*"))

    def remove(self):
        for path in self.files():
            if path != self.path:
                path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)   # last: while it exists, cleanup can still find the rest

    def validate(self):
        """Raise RecordError unless every field is what this run could have written."""
        run_id = self.run_id
        if not (isinstance(run_id, str) and RUN_ID.fullmatch(run_id)):
            raise RecordError(f"run id {run_id!r}: expected 't' and three of a-z, 0-9")
        _check_pid(self.owner_pid, self.owner_start, "owner")
        if not isinstance(self.purpose, str):
            raise RecordError(f"purpose {self.purpose!r}: expected text")
        for key in ("switches", "ovs_bridges", "root_interfaces"):
            names = getattr(self, key)
            if not isinstance(names, list) or len(names) > _MAX_ENTRIES:
                raise RecordError(f"{key}: expected a list of interface names")
            for name in names:
                _ifname(name, run_id, key)
        if not isinstance(self.processes, dict) or len(self.processes) > _MAX_ENTRIES:
            raise RecordError(f"processes: expected a mapping of PID to start time and role, got "
                              f"{type(self.processes).__name__}")
        for pid, info in self.processes.items():
            if not (isinstance(pid, str) and pid.isdigit() and isinstance(info, dict)
                    and set(info) == {"start", "role"} and isinstance(info["role"], str)):
                raise RecordError(f"processes: {pid!r}: {info!r}: expected \"PID\": {{start, role}}")
            _check_pid(int(pid), info["start"], f"process {pid}")
        from .sysctl import MACHINE_GUARDED   # the pure table of guarded keys
        for key in ("machine_sysctls", "machine_run_values"):
            values = getattr(self, key)
            if not isinstance(values, dict):
                raise RecordError(f"{key}: expected a mapping of sysctl key to value")
            for name, value in values.items():
                if name not in MACHINE_GUARDED:
                    raise RecordError(f"{key}: {name!r}: not one of the guarded machine sysctls "
                                      f"({', '.join(MACHINE_GUARDED)})")
                if not (isinstance(value, str) and _SYSCTL_VALUE.fullmatch(value)):
                    raise RecordError(f"{key}: {name}: {value!r}: expected one to four numbers or names")
        return self

    @classmethod
    def load(cls, path):
        """The record at PATH with its journal, validated; RecordError when anything in it is wrong."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise RecordError(f"unreadable: {e}") from None
        if not isinstance(data, dict):
            raise RecordError("expected a JSON object")
        try:
            record = cls(**data)
        except TypeError as e:
            raise RecordError(f"unexpected fields: {e}") from None
        if record.run_id != path.stem:
            raise RecordError(f"run id {record.run_id!r} does not match the file name {path.name}")
        record.validate()
        try:
            text = record.journal.read_text()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as e:
            raise RecordError(f"{record.journal.name}: unreadable: {e}") from None
        lines = text.split("\n")
        # Only the last line may be cut short (a SIGKILL in mid-write); every complete line must parse.
        for number, line in enumerate(lines[:-1], 1):
            try:
                pid, start, role = json.loads(line)
            except (ValueError, TypeError):
                raise RecordError(f"{record.journal.name}:{number}: {line[:60]!r}: expected [pid, start, role]") from None
            _check_pid(pid, start, f"{record.journal.name}:{number}")
            if not isinstance(role, str):
                raise RecordError(f"{record.journal.name}:{number}: role {role!r}: expected text")
            record.processes.setdefault(str(pid), {"start": start, "role": role})
        return record


def scan_records():
    """(records, problems): every valid run record on this machine, and '<file>: <why>' for each that is
    not (skipped: never acted on)."""
    directory = run_dir(create=False)
    if directory is None:
        return [], []
    records, problems = [], []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(RunRecord.load(path))
        except RecordError as e:
            if _fresh_empty(path):
                continue    # a run between creating its file and its first write: not corrupt
            problems.append(f"{path}: {e}")
    return records, problems


def _fresh_empty(path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return True
    import time
    return st.st_size == 0 and time.time() - st.st_mtime < 5


def all_records():
    """Every valid run record on this machine (live runs and dead ones)."""
    return scan_records()[0]

"""The run record: what one lab run created, written down before it is created.

A record lives in /run/tcplab/RUNID.json. It names the run's switches (whose names carry the run id),
their root-namespace interfaces, the PIDs the run started (each with its start time, so a reused PID is
never mistaken for ours) and the machine's sysctls as they were. `tcplab cleanup` reads the records of
dead runs and removes exactly what they name; nothing is ever removed by a name someone else could use.
"""
import json
import os
import secrets
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

RECORD_DIR = Path(os.environ.get("TCPLAB_RUN_DIR", "/run/tcplab"))
_ALPHABET = string.ascii_lowercase + string.digits


def process_start_time(pid):
    """The start time (clock ticks since boot) of PID, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: the fields after the last ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):   # a zombie holds no namespace or socket: it is gone for our purposes
        return None
    return int(fields[19])


def same_process(pid, start_time):
    """True when PID is still the process that was recorded (not a reused PID)."""
    return start_time is not None and process_start_time(pid) == start_time


@dataclass
class RunRecord:
    run_id: str
    owner_pid: int
    owner_start: int
    purpose: str = ""
    switches: list = field(default_factory=list)         # kernel names (run id inside)
    ovs_bridges: list = field(default_factory=list)
    root_interfaces: list = field(default_factory=list)  # switch-side veth ends
    processes: dict = field(default_factory=dict)        # "pid" -> {"start": ticks, "role": "host h1"}
    machine_sysctls: dict = field(default_factory=dict)  # as they were before the run

    @property
    def path(self):
        return RECORD_DIR / f"{self.run_id}.json"

    @classmethod
    def create(cls, purpose=""):
        """A new record with a run id no live record uses, already on disk."""
        RECORD_DIR.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            run_id = "t" + "".join(secrets.choice(_ALPHABET) for _ in range(3))
            path = RECORD_DIR / f"{run_id}.json"
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            record = cls(run_id, os.getpid(), process_start_time(os.getpid()), purpose)
            record.save()
            return record
        raise RuntimeError(f"no free run id in {RECORD_DIR}")

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path)

    @property
    def journal(self):
        """PIDs as they are started: one appended line each (a rewrite per host would cost O(n^2))."""
        return RECORD_DIR / f"{self.run_id}.pids"

    def add_process(self, pid, role):
        start = process_start_time(pid)
        self.processes[str(pid)] = {"start": start, "role": role}
        with open(self.journal, "a") as f:
            f.write(json.dumps([pid, start, role]) + "\n")

    def owner_alive(self):
        return same_process(self.owner_pid, self.owner_start)

    @property
    def control_socket(self):
        """The controller's control channel (lab/controller/channel.py); left behind when it was SIGKILLed."""
        return RECORD_DIR / f"{self.run_id}.ctl"

    def remove(self):
        self.control_socket.unlink(missing_ok=True)
        self.journal.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, path):
        record = cls(**json.loads(Path(path).read_text()))
        try:
            lines = record.journal.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                pid, start, role = json.loads(line)
            except ValueError:
                continue            # a line cut short by a SIGKILL mid-write
            record.processes.setdefault(str(pid), {"start": start, "role": role})
        return record


def all_records():
    """Every run record on this machine (live runs and dead ones)."""
    if not RECORD_DIR.is_dir():
        return []
    records = []
    for path in sorted(RECORD_DIR.glob("t*.json")):
        try:
            records.append(RunRecord.load(path))
        except (ValueError, TypeError):
            continue  # a half-written record of a run killed at its first instant: nothing recorded yet
    return records

"""The lab's errors. Only the CLI (lab/cli/) and lab/console.py turn them into messages and exit codes."""


class LabError(Exception):
    """Something the user can fix: a bad input or a missing piece of the environment."""

    exit_code = 2


class EnvironmentProblem(LabError):
    """The machine cannot run this (not root, a missing command, no netem...)."""


class ScenarioError(LabError):
    """A scenario file is wrong. The message names the file, the line and the key."""

    def __init__(self, path, line, key, message):
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path, self.line, self.key, self.detail = path, line, key, message


class SysctlError(LabError):
    """A sysctl cannot be set where it was asked (a machine-wide key on a host, a refused value)."""


class HostCommandError(LabError):
    """A command run inside a host failed; carries the host, the command and stderr."""

    def __init__(self, host, command, returncode, stderr):
        super().__init__(f"{host}: `{command}` failed with status {returncode}: {stderr.strip()}")
        self.host, self.command, self.returncode, self.stderr = host, command, returncode, stderr


class Skip(LabError):
    """The scenario cannot run on this kernel (e.g. netem absent); not a failure, said with a reason."""

    exit_code = 0

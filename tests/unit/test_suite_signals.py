"""The suite's children start with SIGINT at its default, however the suite itself was started.

Its Ctrl-C tests send SIGINT to a lab process and expect the cleanup and exit 130; a suite started in the
background of a script has SIGINT ignored, which its children would inherit (tests/conftest.py)."""
import subprocess
import sys

CHILD = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"


def test_a_child_of_the_suite_hears_sigint():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "True", out.stderr


def test_a_child_of_a_process_that_ignores_sigint_would_not():
    # The premise of the conftest's handler: a child of a process that ignores SIGINT ignores it too.
    parent = (f"import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              f"print(subprocess.run([sys.executable, '-c', {CHILD!r}], capture_output=True, text=True).stdout)")
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr

#!/usr/bin/env bash
# tcplab's test command (the README's second command; .ci/run calls it). As root on a fresh machine:
# set everything up with the installer, then run the whole test suite, real-network tests included.
#
#   sudo scripts/test.sh              # everything
#   sudo scripts/test.sh -k counters  # extra arguments go to pytest
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install.sh"
# Test-only tools: vagrant checks the Vagrantfile (vagrant validate).
if ! command -v vagrant >/dev/null 2>&1; then
    echo "tcplab-test: installing vagrant (to validate the Vagrantfile)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vagrant >/dev/null
fi
cd "$here"
exec "$here/.venv/bin/python" -m pytest "$@"

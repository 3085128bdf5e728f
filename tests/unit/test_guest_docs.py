"""docs/guests.md is generated from the guest programs: the checked-in file must be what they print."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_guests_md_matches_the_programs():
    generated = subprocess.run([sys.executable, "-S", str(ROOT / "guest" / "gendocs.py")], capture_output=True,
                               text=True, check=True, env={"COLUMNS": "40", "PATH": "/usr/bin:/bin"}).stdout
    checked_in = (ROOT / "docs" / "guests.md").read_text()
    assert generated == checked_in, "docs/guests.md is stale: run python3 guest/gendocs.py > docs/guests.md"


def test_docs_list_every_flag_and_event_field():
    text = (ROOT / "docs" / "guests.md").read_text()
    for needle in ("`--start-at`", "`--watch`", "`--keep-open` `--linger`", "`--so-linger`", "`--shutdown`",
                   "`outq`", "`notsent`", "`errors`", "`last_errno`", "#### `close`", "`--send-at`"):
        assert needle in text, needle
    assert "server --send" not in text or "server.py --send" in text

"""The report built from a real run's results.json (captured in tests/data)."""
from lab.results import Result
from pathlib import Path

from lab import plots, report

RESULT = Result.from_json(Path(__file__).parent.parent / "data" / "results-listen-overflow.json")


def test_narrative_tells_what_happened():
    text = report.narrative(RESULT)
    assert "server's accept queue (slow-server) reached 5 (backlog 4 = backlog + 1)" in text
    assert "ListenOverflows" in text and "TCPSynRetrans" in text
    assert "All 8 checks passed." in text


def test_render_is_self_contained():
    html = report.render(RESULT)
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count("<svg") >= 4


def test_axis_maxima_are_round():
    assert [plots._nice(v) for v in (5, 129, 0.3)] == [8, 200, 0.4]

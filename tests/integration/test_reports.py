"""Reports in a real browser: headless Chromium (Debian's) loads each one with no console error and
no request outside the report's own folder; plots are drawn; scenario text is escaped."""
import shutil
from pathlib import Path

import pytest

from lab.suite import run_suite, targets

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]

HOSTILE = """title: "A <script>alert('x')</script> & <b>bold</b> title"
teaches: |
  Classic claim: <img src=http://example.com/x.png> & friends.
  What the kernel really does: nothing special.
  Proof: "</pre><script>document.title='owned'</script>"
topology: single,2
guests:
  - {name: server, host: h1, program: server, args: {port: 9000}}
  - name: client
    host: h2
    program: client
    args: {mode: connect, server: "{h1}:9000", count: 2}
expect:
  - check: "h1: Tcp.PassiveOpens == 2"
    why: "<i>two</i> & only two"
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    hostile = out / "hostile.yaml"
    hostile.write_text(HOSTILE)
    suite = run_suite(targets(["zero-window", "listen-overflow", str(hostile)]), out / "results", capture=True)
    assert suite.exit_code() == 0, [(r.name, r.result.status) for r in suite.runs]
    return out / "results"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver      # a missing module fails here: never a skip in root CI
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.fail("Debian's chromium and chromium-driver are needed (scripts/test.sh installs them)")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1000,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def _requests(driver):
    import json
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


@pytest.mark.parametrize("page", ["index.html", "zero-window/report.html", "listen-overflow/report.html",
                                  "hostile/report.html"])
def test_report_loads_cleanly(reports, browser, page):
    path = reports / page
    assert path.exists()
    browser.get_log("performance")
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    outside = [u for u in _requests(browser) if not u.startswith(("file://", "data:"))]
    assert outside == [], f"the report asked the network for {outside}"
    assert browser.find_elements("tag name", "script") == []


def test_plots_are_drawn(reports, browser, tmp_path):
    from PIL import Image
    browser.get((reports / "listen-overflow/report.html").as_uri())
    plots = browser.find_elements("css selector", "svg.plot")
    assert len(plots) >= 3
    titles = {p.get_attribute("aria-label") for p in plots}
    assert "Accept queue length over time" in titles
    # The accept-queue plot has a drawn line, and its screenshot is not blank.
    aq = next(p for p in plots if p.get_attribute("aria-label") == "Accept queue length over time")
    assert aq.find_elements("css selector", "polyline")
    shot = tmp_path / "plot.png"
    aq.screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 16) or []
    non_white = sum(n for n, c in colors if c != (255, 255, 255))
    assert non_white > 0.02 * image.width * image.height, "the plot screenshot is blank"


def test_scenario_text_is_escaped(reports, browser):
    html = (reports / "hostile/report.html").read_text()
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    browser.get((reports / "hostile/report.html").as_uri())
    assert browser.title.startswith("hostile")
    assert "<script>alert('x')</script>" in browser.find_element("tag name", "body").text


def test_zero_window_report_names_the_counter(reports):
    html = (reports / "zero-window/report.html").read_text()
    assert "TCPToZeroWindowAdv" in html
    assert "advertised a zero receive window" in html


def test_captures_are_linked_and_decoded(reports):
    import json
    result = json.loads((reports / "listen-overflow/results.json").read_text())
    caps = {c["host"]: c for c in result["captures"]}
    assert set(caps) == {"server", "c1", "c2", "c3", "c4"}
    assert caps["server"]["packets"] > 0
    assert (reports / "listen-overflow" / caps["server"]["file"]).stat().st_size > 24
    html = (reports / "listen-overflow/report.html").read_text()
    assert f"href='{caps['server']['file']}'" in html
    assert "Flags [S]" in caps["c1"]["excerpt"]      # the SYNs, retransmitted ones among them


def test_index_links_every_report(reports):
    html = (reports / "index.html").read_text()
    for name in ("zero-window", "listen-overflow", "hostile"):
        assert f"href='{name}/report.html'" in html
    assert "ListenOverflows" in html


def test_zero_window_report_has_a_time_sequence_graph_flat_at_the_window(reports, browser, tmp_path):
    """The Stevens graph from tcp_probe: while the receiver's window is zero, the window limit sits on what was
    acknowledged (nothing more may be sent), and the graph is drawn, not blank."""
    from PIL import Image

    from lab import report
    from lab.results import Result
    result = Result.from_json(reports / "zero-window" / "results.json")
    assert result.trace["available"], result.trace
    host, local, peer, probes = report.main_connection(result)
    assert host == "h2" and peer.endswith(":9000")
    zero = [e for e in probes if e["snd_wnd"] == 0]
    assert zero, "the sender saw a zero window in tcp_probe"
    limits = {(e["snd_una"] + e["snd_wnd"]) % (1 << 32) for e in zero}
    assert len(limits) == 1, f"the window limit moved while the window was zero: {sorted(limits)}"
    limit = limits.pop()
    assert all((limit - e["snd_nxt"]) % (1 << 32) < (1 << 31) for e in zero), "data was sent past a zero window"
    browser.get((reports / "zero-window/report.html").as_uri())
    graph = next(p for p in browser.find_elements("css selector", "svg.plot")
                 if p.get_attribute("aria-label").startswith("Time-sequence graph"))
    assert len(graph.find_elements("css selector", "polyline")) == 3
    shot = tmp_path / "tsg.png"
    graph.screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 16) or []
    assert sum(n for n, c in colors if c != (255, 255, 255)) > 0.02 * image.width * image.height


def test_the_report_says_what_the_kernel_said(reports):
    from lab.results import Result
    result = Result.from_json(reports / "listen-overflow" / "results.json")
    html = (reports / "listen-overflow" / "report.html").read_text()
    assert "What the kernel said:" in html and "retransmitted its SYN" in html
    assert "<th class=num>server</th>" in html            # one matrix: a column per host
    assert result.host("c1").kernel.get("syn-retransmit", 0) == result.host("c1").counter("TcpExt.TCPSynRetrans")

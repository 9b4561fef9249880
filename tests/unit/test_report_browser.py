"""REPORT.html of the quick run in a real browser (headless Chromium) at a phone's width.

Chromium is Debian's ``chromium`` package. Without it the tests are skipped, with the
reason; ``ETCDLAB_REQUIRE_BROWSER=1`` (as in ``.ci/run``) turns its absence into a failure.
The page is opened twice: once as a copy with a probe script, in a phone-sized iframe,
whose measurements are read back from ``--dump-dom``; once as it is, for a screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from etcdlab.report import HTML_NAME, render_report

pytestmark = pytest.mark.browser

QUICK = Path(__file__).resolve().parents[1] / "data" / "quick-run"
PHONE = (390, 844)  # CSS pixels of a common phone screen, portrait

# Headless Chromium lays a --dump-dom page out at least 500 px wide, whatever --window-size
# says, so the report is measured inside an iframe of the phone's size. There, after
# loading, the probe records the images and where the summary table landed (its box, and
# whether the browser finds the table itself at a point inside its first row), and posts
# that to the outer page, which keeps it in its body's data-* attributes for --dump-dom.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  let box = document.getElementById("summary");
  while (box && !box.classList.contains("table-scroll")) box = box.nextElementSibling;
  const table = box.querySelector("table");
  const rect = table.getBoundingClientRect();
  parent.postMessage({
    imagesTotal: images.length,
    imagesLoaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    summaryTop: Math.round(rect.top),
    summaryLeft: Math.round(rect.left),
    summaryWidth: Math.round(rect.width),
    summaryHeight: Math.round(rect.height),
    summaryHit: table.contains(document.elementFromPoint(rect.left + 8, rect.top + 8)),
    viewportWidth: window.innerWidth,
    viewportHeight: window.innerHeight,
    clientWidth: document.documentElement.clientWidth,
    pageWidth: document.documentElement.scrollWidth,
  }, "*");
});
</script>
"""
FRAME = f"""<!DOCTYPE html>
<html><body style="margin:0">
<iframe src="probed.html" width="{PHONE[0]}" height="{PHONE[1]}" style="border:0"></iframe>
<script>addEventListener("message", e => Object.assign(document.body.dataset, e.data));</script>
</body></html>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium program, or a skip (a failure with ETCDLAB_REQUIRE_BROWSER=1)."""
    program = shutil.which("chromium")
    if program is None:
        if os.environ.get("ETCDLAB_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed, and ETCDLAB_REQUIRE_BROWSER=1")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return program


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """REPORT.html rendered from a copy of the quick run."""
    run = tmp_path_factory.mktemp("browser") / "quick-run"
    shutil.copytree(QUICK, run)
    render_report(run)
    return run / HTML_NAME


def headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with its own profile at the phone's window size."""
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={PHONE[0]},{PHONE[1]}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_every_image_loads_and_the_summary_is_on_the_first_screen(chromium, page, tmp_path):
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")
    frame = page.with_name("phone.html")
    frame.write_text(FRAME, encoding="utf-8")
    done = headless(chromium, tmp_path / "profile", "--virtual-time-budget=5000",
                    "--run-all-compositor-stages-before-draw", "--dump-dom", frame.as_uri())
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stdout[:500]
    seen = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert seen.get("summary-hit") == "true", seen  # also: the probe reported at all
    numbers = {key: int(value) for key, value in seen.items() if key != "summary-hit"}
    charts = len(re.findall(r"!\[[^\]]*\]\([^)]+\.png\)",
                            (QUICK / "REPORT.md.expected").read_text(encoding="utf-8")))
    assert numbers["images-total"] == charts == numbers["images-loaded"] > 0, seen
    assert (numbers["viewport-width"], numbers["viewport-height"]) == PHONE, seen
    assert numbers["summary-left"] >= 0 and numbers["summary-width"] > 0, seen
    assert 0 < numbers["summary-top"] < PHONE[1] - 50, seen
    assert numbers["summary-height"] > 0, seen
    # Wide tables scroll in their own box: the page itself never scrolls sideways.
    assert numbers["page-width"] <= numbers["client-width"], seen


def test_the_page_paints_at_a_phone_width(chromium, page, tmp_path):
    shot = tmp_path / "phone.png"
    headless(chromium, tmp_path / "profile", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 1000
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (PHONE[1], PHONE[0])
    colours = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colours) > 16, "the screenshot is (nearly) one colour"

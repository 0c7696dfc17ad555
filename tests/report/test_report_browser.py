"""The run, study and seed-group reports as a reader sees them: opened in headless Chromium.

Each page is loaded from disk (``file://``), so it must stand alone: every section of the HTML is in
the rendered page with a size, every image decodes (``naturalWidth > 0``), nothing is fetched from
anywhere, and the console logs no error. A full-page screenshot is saved under the test's tmp dir
and listed under "artifacts" at the end of the pytest output.

Chromium is Debian's ``chromium`` driven through Debian's ``chromium-driver`` (``.ci/run``
installs both when missing); selenium is given the driver's path, so selenium-manager never
downloads anything.
"""

from __future__ import annotations

import base64
import csv
import json
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# without the networking flags Chromium keeps trying to reach Google's servers
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,1000",
)
# the rendered page as the browser built it (read after the load event)
PAGE_STATE = """
const box = e => e.getBoundingClientRect();
return {
  ready: document.readyState,
  title: document.title,
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                          height: i.naturalHeight, data: i.src.startsWith('data:image/png')})),
  sections: [...document.querySelectorAll('section')].map(s => ({
      id: s.id, title: (s.querySelector('h2') || {textContent: ''}).textContent.trim(),
      width: box(s).width, height: box(s).height})),
  links: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1)),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  fetched: performance.getEntriesByType('resource').map(r => r.name),
};
"""


class _Tags(HTMLParser):
    """The ``<img>`` count and the ``<section>`` ids of the HTML source, as written."""

    def __init__(self) -> None:
        super().__init__()
        self.images = 0
        self.sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images += 1
        elif tag == "section":
            self.sections.append(dict(attrs).get("id") or "")


def source_tags(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    return tags


@pytest.fixture(scope="module")
def chrome(tmp_path_factory):
    """One headless Chromium for the module, with a fresh profile and the console log kept."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(
            f"{CHROMIUM} or {CHROMEDRIVER} not found: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does it)"
        )
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path_factory.mktemp('profile'))}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # selenium-manager, should anything call it, stays offline
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, path: Path) -> tuple[dict, list[dict]]:
    """Load ``path``; the page's state and the console entries its loading logged."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(path.resolve().as_uri())
    driver.execute_async_script(  # every image decoded (or failed to) before the page is read
        "const done = arguments[arguments.length - 1];"
        "Promise.allSettled([...document.images].map(i => i.decode())).then(() => done(true));"
    )
    return driver.execute_script(PAGE_STATE), driver.get_log("browser")


def full_page_screenshot(driver, path: Path) -> Path:
    """A PNG of the whole page (beyond the window), through the DevTools protocol."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 16000), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def check_rendered(driver, page: Path, screenshot: Path, record_property) -> dict:
    """Assert that ``page`` renders whole in Chromium; save and record its screenshot; its state."""
    html = page.read_text(encoding="utf-8")
    state, console = open_page(driver, page)
    shot = full_page_screenshot(driver, screenshot)
    record_property("artifact", str(shot))
    print(f"screenshot: {shot}")
    assert state["ready"] == "complete"
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert not errors, f"console errors in {page}: {errors} (screenshot {shot})"
    assert not state["fetched"], f"{page} fetched {state['fetched']}: a report must open offline"
    tags = source_tags(html)
    assert [s["id"] for s in state["sections"]] == tags.sections and tags.sections
    hidden = [s["id"] for s in state["sections"] if not (s["width"] > 0 and s["height"] > 0 and s["title"])]
    assert not hidden, f"sections without a title or with no size on the page: {hidden} (screenshot {shot})"
    assert len(state["images"]) == tags.images
    broken = [i["alt"] for i in state["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert not broken, f"images that did not render: {broken} (screenshot {shot})"
    assert all(i["data"] for i in state["images"])  # embedded, so the file opens offline
    dangling = sorted(set(state["links"]) - set(state["ids"]))
    assert not dangling, f"links to no element: {dangling}"
    _check_png(shot)
    return state


def _check_png(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 1000 and pixels.shape[1] >= 1000  # the whole page, not the window
    assert pixels.std() > 1.0  # not a blank page


def _section_titles(state: dict) -> list[str]:
    return [s["title"] for s in state["sections"]]


def test_report_of_a_tiny_real_run_renders_in_chromium(chrome, tiny_config, tmp_path, record_property):
    import smallvision
    from smallvision.report.html import build_report

    tiny_config["train"]["epochs"] = 2
    result = smallvision.run(tiny_config)
    built = build_report(result.dir)
    state = check_rendered(chrome, built.path, tmp_path / "run-report.png", record_property)
    titles = _section_titles(state)
    assert any(t.startswith("Head label") for t in titles), titles
    assert any(t == "Training curves" for t in titles), titles
    # the training curves and at least one figure of the head
    assert len(state["images"]) >= 2
    assert state["title"].startswith(tiny_config["name"])


def test_report_of_a_two_head_run_renders_every_head(chrome, make_run, tmp_path, record_property):
    from smallvision.report.html import build_report

    run = make_run(degenerate=True)  # warnings boxes too
    built = build_report(run)
    state = check_rendered(chrome, built.path, tmp_path / "two-head-report.png", record_property)
    heads = json.loads((run / "metrics.json").read_text())["heads"]
    titles = _section_titles(state)
    for head, info in heads.items():
        assert any(t.startswith(f"Head {head}") and info["kind"] in t for t in titles), (head, titles)
    assert built.warnings  # the degenerate head's warnings are on the page that rendered


def test_the_check_catches_a_broken_image_and_a_console_error(chrome, tmp_path):
    from smallvision.report.tables import Image

    good = Image("ok", _tiny_png()).src
    page = tmp_path / "bad.html"
    page.write_text(
        f"<html><head><title>bad</title></head><body><section id='a'><h2>A</h2>"
        f"<img alt='fine' src='{good}'><img alt='broken' src='data:image/png;base64,AAAA'></section>"
        "<script>console.error('boom')</script></body></html>"
    )

    def ignore(*_):  # these screenshots are of a page made to fail: no artifact
        pass

    with pytest.raises(AssertionError, match="boom"):
        check_rendered(chrome, page, tmp_path / "bad.png", ignore)
    page.write_text(page.read_text().replace("console.error('boom')", ""))
    with pytest.raises(AssertionError, match="images that did not render: \\['broken'\\]"):
        check_rendered(chrome, page, tmp_path / "bad.png", ignore)


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 128, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# a tiny real study: three variants (the critical-difference diagram needs three), one of them a
# scikit-learn baseline, over two seeds
STUDY_BASE = {
    "name": "tiny",
    "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
    "train": {"epochs": 1, "batch_size": 64, "threads": 1, "progress": False, "optimizer": {"lr": 0.01}},
}
STUDY_VARIANTS = {
    "cnn": {},
    "fast": {"train.optimizer.lr": 0.03},
    "logreg": {"baseline": "logistic_regression"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study's directory, its page rebuilt once two cells have their run reports (so it links them)."""
    from smallvision.report import html
    from smallvision.report.study_page import build_study_report
    from smallvision.study.runner import run_study

    tmp = tmp_path_factory.mktemp("study")
    raw = {"name": "tiny", "output_dir": str(tmp / "studies"), "base": STUDY_BASE}
    raw |= {"variants": STUDY_VARIANTS, "seeds": [1, 2]}
    with pytest.MonkeyPatch.context() as mp:  # run reports for two cells only, below: they are slow
        mp.setattr(html, "write_report", lambda run_dir: None)
        result = run_study(raw, progress=False)
    assert not result.failed
    for run_dir in sorted((result.dir / "runs").iterdir())[:2]:
        html.build_report(run_dir)
    build_study_report(result.dir)
    return result.dir


def _local_links(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"
        ".filter(h => !h.startsWith('#'))"
    )


def test_study_report_renders_and_its_links_open_run_reports(chrome, study, tmp_path, record_property):
    page = study / "report.html"
    state = check_rendered(chrome, page, tmp_path / "study-report.png", record_property)
    titles = _section_titles(state)
    with (study / "results.csv").open(newline="") as f:
        steps = sorted({row["step"] for row in csv.DictReader(f)})
    assert titles[0] == "Files and cells" and all(f"Step {s}" in titles for s in steps), titles
    alts = [i["alt"] for i in state["images"]]
    assert "critical-difference diagram" in alts, alts
    links = _local_links(chrome)
    assert len([h for h in links if h.endswith("/report.html")]) == 2, links  # the two built reports
    for href in links:  # every link leads to a file in the study directory
        assert (study / href).is_file(), href
    first = next(h for h in links if h.endswith("/report.html"))
    chrome.find_element("css selector", f'a[href="{first}"]').click()  # as a reader does
    assert chrome.current_url == (study / first).resolve().as_uri()
    state = check_rendered(chrome, study / first, tmp_path / "linked-run-report.png", record_property)
    assert any(t.startswith("Head label") for t in _section_titles(state))


def test_seed_group_page_renders(chrome, tmp_path, record_property):
    from smallvision.report import html
    from smallvision.study.group import run_group
    from smallvision.study.run import resolve_config

    cfg = resolve_config({**STUDY_BASE, "name": "grp", "seeds": [1, 2], "output_dir": str(tmp_path / "runs")})
    with pytest.MonkeyPatch.context() as mp:  # the members' run reports are checked above
        mp.setattr(html, "write_report", lambda run_dir: None)
        group = run_group(cfg).dir
    state = check_rendered(chrome, group / "report.html", tmp_path / "group-report.png", record_property)
    assert "Members and ensemble" in _section_titles(state) and state["images"]

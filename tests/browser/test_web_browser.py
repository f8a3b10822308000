"""The web page in a real browser: `streamlit run web/app.py` against a live pipeline, driven by
headless Chromium through selenium.

It uploads an image, reads it, and checks that the image's known words appear on the page, then
saves a screenshot (its path is printed; set OCR_SCREENSHOT_DIR to keep a copy). A two-page PDF
it draws itself is read page by page and downloaded as a searchable PDF, whose text
(`pdftotext`) must hold both pages' words. Needs Debian's `chromium` and `chromium-driver`;
without them the tests skip and say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.render import png_bytes, render_words

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "web" / "app.py"
CHROMIUM = os.environ.get("OCR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OCR_CHROMEDRIVER", "/usr/bin/chromedriver")
DEV_IMAGE = "funsd_81186212"
CANVAS = "640"  # small, so CRAFT stays quick on a CPU
UI_TIMEOUT_S = 90  # generous: the CI machine may be busy
RESULT_TIMEOUT_S = 240

HAVE_BROWSER = os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)
# On a developer's machine without Chromium the test skips; CI installs it (.ci/run), so there a
# missing browser is a failure rather than a silent skip.
if not HAVE_BROWSER and os.environ.get("CI"):
    raise RuntimeError(f"CI needs {CHROMIUM} and {CHROMEDRIVER}: .ci/run installs them")
pytestmark = pytest.mark.skipif(
    not HAVE_BROWSER,
    reason=f"needs headless Chromium: {CHROMIUM} and {CHROMEDRIVER} "
    "(apt-get install chromium chromium-driver)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def normalise(word: str) -> str:
    """Case-folded, edge punctuation stripped: how the project compares words."""
    return re.sub(r"^\W+|\W+$", "", word.casefold())


@contextlib.contextmanager
def streamlit_page(pipeline_url: str, log_dir: Path) -> Iterator[str]:
    """`streamlit run web/app.py` on a free port, pointed at the live pipeline by PIPELINE_URL."""
    port = free_port()
    log_path = log_dir / "streamlit.log"
    env = os.environ | {
        "PIPELINE_URL": pipeline_url,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited ({process.returncode}):\n{log_path.read_text()}")
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not come up in 60 s:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def page_url(pipeline_url: str, tmp_path_factory) -> Iterator[str]:
    with streamlit_page(pipeline_url, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    """Where the browser saves what the page's download buttons give it."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads: Path):
    """Headless Chromium with everything that would call home switched off (there's no network),
    saving downloads to ``downloads`` without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never try to download a driver
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1500,2000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    # Headless Chromium takes the directory from the DevTools protocol; the prefs alone are not
    # honoured by every version.
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()


def until(driver, what: str, condition, timeout_s: float = UI_TIMEOUT_S):
    """Wait for ``condition``; on timeout fail with what was awaited and a screenshot of why."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout_s, ignored_exceptions=[StaleElementReferenceException])
    try:
        return wait.until(condition)
    except TimeoutException:
        shot = Path(os.environ.get("OCR_SCREENSHOT_DIR") or "/tmp") / "web_browser_failure.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
        pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}; screenshot: {shot}")


def read_in_browser(driver, page_url: str, image: Path, mode_label: str) -> str:
    """Open the page, choose the mode and a small canvas, upload, read; return the page's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def one(css: str):
        return lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, css)), None)

    driver.get(page_url)
    canvas = until(driver, "the canvas size input", one("input[aria-label='Canvas size (px)']"))
    canvas.click()
    canvas.send_keys(Keys.CONTROL, "a")
    canvas.send_keys(CANVAS, Keys.ENTER)
    until(driver, f"canvas size {CANVAS}", lambda d: canvas.get_attribute("value") == CANVAS)

    option = f"//label[@data-testid='stRadioOption'][contains(., '{mode_label}')]"
    until(driver, f"the {mode_label} option", lambda d: d.find_element(By.XPATH, option)).click()

    one("input[type='file']")(driver).send_keys(str(image))
    until(
        driver,
        "the upload to register",
        lambda d: d.find_elements(By.XPATH, "//p[starts-with(normalize-space(.), 'Press Read')]"),
    )
    button = "//button[contains(., 'Read text')]"
    until(driver, "the Read text button", lambda d: d.find_element(By.XPATH, button)).click()

    errors = "[data-testid='stAlertContainer'][role='alert']"  # st.error / st.warning
    until(
        driver,
        "the result",
        lambda d: one("[data-testid='stCode']")(d) or one(errors)(d),
        RESULT_TIMEOUT_S,
    )
    alerts = [a.text for a in driver.find_elements(By.CSS_SELECTOR, errors)]
    assert not alerts, alerts
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    until(  # the annotated image has arrived and decoded, not just been announced
        driver,
        "the annotated image",
        lambda d: d.execute_script(
            "const i = document.querySelector('[data-testid=\"stImage\"] img');"
            "return i !== null && i.complete && i.naturalWidth > 0;"
        ),
    )
    return driver.find_element(By.CSS_SELECTOR, "[data-testid='stCode']").text


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    keep = os.environ.get("OCR_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
        print(f"screenshot copied to {Path(keep) / path.name}")
    print(f"screenshot: {path}")
    return path


def metric_tiles(driver) -> dict[str, str]:
    """The monitoring page's five tiles, label -> value, once they have all rendered."""
    from selenium.webdriver.common.by import By

    def tiles(d):
        found = {}
        for tile in d.find_elements(By.CSS_SELECTOR, "[data-testid='stMetric']"):
            label = tile.find_element(By.CSS_SELECTOR, "[data-testid='stMetricLabel']").text
            value = tile.find_element(By.CSS_SELECTOR, "[data-testid='stMetricValue']").text
            found[label.strip()] = value.strip()
        return found if len(found) == 5 else None

    return until(driver, "the metric tiles", tiles)


def page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def save_element_shots(driver, tmp_path: Path, name: str) -> None:
    """Close-ups of the annotated image, the words table and the timings chart, to look at."""
    from selenium.webdriver.common.by import By

    for part, css in (
        ("image", "[data-testid='stImage']"),
        ("table", "[data-testid='stDataFrame']"),
        ("chart", "[data-testid='stVegaLiteChart']"),
    ):
        found = driver.find_elements(By.CSS_SELECTOR, css)
        assert found, f"no {part} on the page"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
        time.sleep(0.5)  # let the chart finish its transition
        path = tmp_path / f"{name}_{part}.png"
        found[0].screenshot(str(path))
        keep = os.environ.get("OCR_SCREENSHOT_DIR")
        if keep:
            shutil.copy(path, Path(keep) / path.name)
        print(f"screenshot: {path}")


def test_first_load_has_no_deploy_button_and_states_the_upload_limit(browser, page_url, tmp_path):
    """The first page load after streamlit starts (this runs first): .streamlit/config.toml,
    not st.set_option in the script, is what keeps the Deploy button away on this load."""
    from selenium.webdriver.common.by import By

    browser.get(page_url)
    limit = until(
        browser,
        "the uploader's instructions",
        lambda d: next(
            iter(d.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploaderDropzone']")),
            None,
        ),
    )
    # Without the config, this first load shows the toolbar with a Deploy button a moment after
    # the page; with toolbarMode=minimal there is no toolbar at all. Give it that moment.
    time.sleep(2.0)
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stAppDeployButton']")
    buttons = [b.text.strip() for b in browser.find_elements(By.TAG_NAME, "button")]
    assert "Deploy" not in buttons, buttons
    assert "20MB per file" in limit.text and "200MB" not in limit.text, limit.text
    save_screenshot(browser, tmp_path, "web_first_load")


def test_rendered_image_read_in_batched_mode(browser, page_url, tmp_path):
    words = [["Invoice", "Total", "Paid"], ["Hello", "World", "2024"]]
    image, _ = render_words(words)
    path = tmp_path / "rendered_words.png"
    path.write_bytes(png_bytes(image))

    text = read_in_browser(browser, page_url, path, "Batched")

    found = {normalise(token) for token in text.split()}
    assert {normalise(w) for line in words for w in line} <= found, text
    body = page_text(browser)
    assert f"canvas {CANVAS} px" in body and "Batched (/pipeline)" in body
    assert "Download .txt" in body and "Download JSON" in body
    save_screenshot(browser, tmp_path, "web_rendered_batched")
    save_element_shots(browser, tmp_path, "web_rendered_batched")

    # The monitoring page reads the live pipeline's /metrics, which now holds that request.
    browser.get(f"{page_url}/monitoring")
    tiles = metric_tiles(browser)
    assert int(tiles["Requests"]) >= 1, tiles
    assert tiles["Mean batch size"] != "–", tiles  # the batched read went through the bucket
    # Durations in a unit that keeps them short ("28.2 s"), so no tile is cut off with "…".
    assert all(len(value) <= 9 for value in tiles.values()), tiles
    assert not browser.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"stMetricValue\"] div')]"
        ".some(e => e.scrollWidth > e.clientWidth + 1);"
    ), tiles
    save_screenshot(browser, tmp_path, "web_monitoring")


def test_dev_image_read_in_sequential_mode(browser, page_url, dev_dir, tmp_path):
    image = dev_dir / "images" / f"{DEV_IMAGE}.png"
    labels = json.loads((dev_dir / "labels" / f"{DEV_IMAGE}.json").read_text())
    known = {normalise(w["text"]) for w in labels["words"] if w["text"] != "###"}
    known = {w for w in known if len(w) >= 4 and w.isalpha()}

    text = read_in_browser(browser, page_url, image, "Sequential")

    found = {normalise(token) for token in text.split()}
    hits = known & found
    # At a 640 px canvas most, not all, of a form's words are read right; half is a floor that
    # only a page that lost or garbled the results would miss.
    assert len(hits) >= len(known) / 2, f"found {sorted(hits)} of {sorted(known)}:\n{text}"
    assert f"canvas {CANVAS} px" in page_text(browser)
    save_screenshot(browser, tmp_path, "web_dev_sequential")
    save_element_shots(browser, tmp_path, "web_dev_sequential")


# Two pages of words, drawn as a PDF's text (Helvetica): each page's words must be read from it.
PDF_PAGES = [["Invoice", "Total", "Paid"], ["Hello", "World", "Report"]]


def words_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of one short line of words per page, large enough to read at a 640 px canvas."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=30)
    for words in pages:
        pdf.add_page(format=(400, 150))
        pdf.text(30, 90, "   ".join(words))
    return bytes(pdf.output())


def words_of(text: str) -> set[str]:
    return {normalise(token) for token in text.split()}


def go_to_page(driver, number: int, previous_text: str) -> str:
    """Choose page ``number`` of the document shown; return that page's text once it is up."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    selector = until(
        driver,
        "the page number input",
        lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "input[aria-label^='Page (']")), None),
    )
    selector.click()
    selector.send_keys(Keys.CONTROL, "a")
    selector.send_keys(str(number), Keys.ENTER)
    heading = f"//p[normalize-space(.) = 'Text of page {number}']"
    until(driver, f"page {number}", lambda d: d.find_elements(By.XPATH, heading))
    code = "[data-testid='stCode']"
    return until(
        driver,
        f"page {number}'s text",
        lambda d: (text := d.find_element(By.CSS_SELECTOR, code).text) != previous_text and text,
    )


def click_button(driver, label: str, timeout_s: float = UI_TIMEOUT_S) -> None:
    from selenium.webdriver.common.by import By

    xpath = f"//button[normalize-space(.) = '{label}']"
    button = until(
        driver, f"the {label} button", lambda d: d.find_element(By.XPATH, xpath), timeout_s
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()


def downloaded(folder: Path, suffix: str) -> Path | None:
    """The finished download in ``folder`` ending in ``suffix`` (Chromium's .crdownload while
    it is still being written)."""
    done = [path for path in folder.iterdir() if path.name.endswith(suffix)]
    partial = [path for path in folder.iterdir() if path.name.endswith(".crdownload")]
    return done[0] if done and not partial else None


def test_two_page_pdf_read_page_by_page_and_downloaded_searchable(
    browser, page_url, downloads, tmp_path
):
    if shutil.which("pdftotext") is None:
        pytest.skip(
            "needs pdftotext to read the searchable PDF back (apt-get install poppler-utils)"
        )
    path = tmp_path / "two pages.pdf"
    path.write_bytes(words_pdf(PDF_PAGES))
    expected = [{normalise(word) for word in words} for words in PDF_PAGES]

    first = read_in_browser(browser, page_url, path, "Sequential")

    assert expected[0] <= words_of(first), first
    assert "2 pages" in page_text(browser) and "Text of page 1" in page_text(browser)
    save_screenshot(browser, tmp_path, "web_pdf_page1")
    second = go_to_page(browser, 2, first)
    assert expected[1] <= words_of(second), second
    save_screenshot(browser, tmp_path, "web_pdf_page2")

    click_button(browser, "Make searchable PDF")
    click_button(browser, "Download searchable PDF", RESULT_TIMEOUT_S)
    saved = until(browser, "the searchable PDF download", lambda d: downloaded(downloads, ".pdf"))
    save_screenshot(browser, tmp_path, "web_pdf_downloaded")
    assert saved.name == "two_pages-searchable.pdf"
    assert saved.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", "-layout", str(saved), "-"], capture_output=True, check=True, text=True
    ).stdout
    pages = text.split("\f")
    assert expected[0] <= words_of(pages[0]) and expected[1] <= words_of(pages[1]), text


def test_a_link_to_a_page_opens_it_in_the_app(browser, pipeline_url: str, tmp_path):
    """The first visit after the page starts may be a bookmarked /monitoring: it must open
    inside the app, under its navigation's titles. (With the pages in a folder named pages/,
    Streamlit ran the file on its own and listed the files: app, jobs, monitoring, read.)"""
    from selenium.webdriver.common.by import By

    def titles(driver) -> list[str]:
        nav = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
        return [link.text.splitlines()[-1] for link in nav]  # after the icon's name

    with streamlit_page(pipeline_url, tmp_path) as url:
        browser.get(f"{url}/monitoring")
        until(browser, "the Pipeline metrics page", lambda d: "Pipeline metrics" in d.page_source)
        until(browser, "the sidebar's navigation", titles)
        assert titles(browser) == ["Read documents", "Jobs", "Monitoring"]

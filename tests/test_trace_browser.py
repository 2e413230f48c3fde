"""The ``fastbp trace --html`` page in a real browser (headless Chromium via Selenium).

Every stage is stepped through with the page's own buttons; at every step each
value the page shows must be the trace's (to the digits shown) and the
console must stay free of errors. The screenshots the README shows are saved
into docs/ on the way. Skipped only where Chromium or its driver is missing
(``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp import _cli_trace
from fastbp._trace_html import data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium "
                "chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]
SHOWN = """return [...document.querySelectorAll('[data-key][data-value]')]
  .filter(e => e.getAttribute('visibility') !== 'hidden' &&
               !(e.closest('g') && e.closest('g').getAttribute('visibility') === 'hidden'))
  .map(e => [e.getAttribute('data-key'), e.getAttribute('data-value'),
              [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.nodeValue).join('')]);"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _viewport(driver, width, height, mobile=False):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def _errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _expected(frames, upto, sample):
    """Every element's value after frame ``upto``, for one sample."""
    val = {}
    for fr in frames[:upto + 1]:
        for it in fr["items"]:
            if it["r"] in (-1, sample):
                val[it["k"]] = it["v"]
    return val


def _check_frame(driver, page, f, sample):
    expected = _expected(page["frames"], f, sample)
    shown = driver.execute_script(SHOWN)
    assert shown, f"frame {f}: nothing shown"
    for key, value, text in shown:
        assert key in expected, (f, key)
        assert float(value) == expected[key], (f, key, value)
        number = float(re.findall(r"-?[\d.]+(?:e[-+]?\d+)?", text)[-1])   # the value shown last
        assert number == pytest.approx(expected[key], rel=5e-7, abs=1e-12), (f, key, text)
    drawn = {s["key"] for n in page["graph"]["nodes"] for s in n["slots"]}
    missing = {k for k in expected if k in drawn} - {k for k, _, _ in shown}
    assert not missing, (f, missing)          # every value computed so far is on its node
    return {k: float(v) for k, v, _ in shown}


def _shot(driver, name, width=1280, mobile=False):
    height = driver.execute_script(
        "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)")
    _viewport(driver, width, min(int(height), 1400), mobile)
    DOCS.mkdir(exist_ok=True)
    driver.save_screenshot(str(DOCS / name))
    assert (DOCS / name).stat().st_size > 10_000


def _open(driver, path, width=1280, height=800, mobile=False):
    _viewport(driver, width, height, mobile)
    driver.get(path.as_uri())
    assert driver.find_element(By.ID, "counter").text.startswith("step 1 of")


def _stage_of(driver):
    return driver.find_element(By.CSS_SELECTOR, "#stages button.active").get_attribute(
        "data-stage")


def test_page_of_the_221_example_steps_through_every_stage(browser, tmp_path):
    path = tmp_path / "step.html"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-m", "fastbp", "trace", "--example", "2-2-1",
                          "--html", str(path)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    text = path.read_text(encoding="utf-8")
    # self-contained: no script, style sheet, font or image from anywhere
    assert not re.search(r"<script[^>]+src|@import|url\(|@font-face", text)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    model, x, y, lr, names, _ = _cli_trace.example("2-2-1")
    t = model.trace(x, y, lr=lr)
    page = data(t, names=names)
    frames = page["frames"]
    _open(browser, path)
    shots = {"forward": "trace-forward.png", "backward": "trace-backward.png"}
    seen_stages = []
    for f in range(len(frames)):
        if f:
            browser.find_element(By.ID, "next").click()
        assert browser.find_element(By.ID, "counter").text == f"step {f + 1} of {len(frames)}"
        shown = _check_frame(browser, page, f, 0)
        stage = frames[f]["stage"]
        seen_stages.append(_stage_of(browser))
        nxt = frames[f + 1]["stage"] if f + 1 < len(frames) else None
        if stage in shots and nxt != stage:        # the last frame of the stage
            _shot(browser, shots[stage])
            _viewport(browser, 1280, 800)
        assert browser.find_element(By.ID, "frame-title").text == frames[f]["title"]
    assert seen_stages[0] == "start" and {"forward", "loss", "backward", "update"} <= set(
        seen_stages)
    # the last step shows the whole step: the trace's new weights, gradients and new loss
    W1, W2 = t.new_weights
    for P, new in (("W1", W1), ("W2", W2)):
        for k, j in np.ndindex(new.shape):
            assert shown[f"n:{P}:{k},{j}"] == new[k, j]
    assert shown["v:L"] == t.loss and shown["n:L"] == t.after["loss"]
    assert shown["v:z1:0"] == t.stage("forward")[0]["z"][0, 0]
    _shot(browser, "trace-update.png")
    # the stage buttons jump to each stage's first step, and Back / Restart go back
    for stage in ("loss", "backward", "forward", "update"):
        browser.find_element(By.ID, f"stage-{stage}").click()
        first = next(i for i, fr in enumerate(frames) if fr["stage"] == stage)
        assert browser.find_element(By.ID, "counter").text.startswith(f"step {first + 1} of")
        assert _stage_of(browser) == stage
        _check_frame(browser, page, first, 0)
    browser.find_element(By.ID, "prev").click()
    browser.find_element(By.ID, "first").click()
    assert browser.find_element(By.ID, "counter").text.startswith("step 1 of")
    # clicking an edge label shows that weight's formulas so far
    browser.find_element(By.ID, "stage-update").click()
    label = browser.find_element(By.CSS_SELECTOR, "[data-key='g:W2:0,0']")
    label.find_element(By.XPATH, "..").click()
    details = browser.find_element(By.ID, "details-lines").text
    assert "dE/dw5 = h1·Δ = 0.85·(-0.809) = -0.68765" in details
    assert _errors(browser) == []


def test_page_on_a_phone_is_one_column_without_page_overflow(browser, tmp_path):
    model, x, y, lr, names, _ = _cli_trace.example("2-2-1")
    t = model.trace(x, y, lr=lr)
    path = tmp_path / "phone.html"
    t.html(path, names=names, title="fastbp trace: seed 002, 2-2-1")
    page = data(t, names=names)
    _open(browser, path, 390, 844, mobile=True)
    browser.find_element(By.ID, "stage-backward").click()
    browser.find_element(By.ID, "next").click()
    f = int(browser.find_element(By.ID, "counter").text.split()[1]) - 1
    _check_frame(browser, page, f, 0)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    # the network is drawn top to bottom: the input row above the layer-1 row
    ys = browser.execute_script("""
      const y = k => document.querySelector(`[data-key='${k}']`).getBoundingClientRect().top;
      return [y('v:x:0'), y('v:z1:0'), y('v:x:1')];""")
    assert ys[0] < ys[1] and abs(ys[0] - ys[2]) < 1
    _shot(browser, "trace-phone.png", width=390, mobile=True)
    assert _errors(browser) == []


def test_page_with_batchnorm_dropout_and_two_samples(browser, tmp_path):
    m = fb.Sequential([fb.Dense(2, 3), fb.BatchNorm(3), fb.Tanh(), fb.Dropout(0.5),
                       fb.Dense(3, 2)], loss="cross_entropy", seed=2)
    t = m.trace([[0.5, -1], [-0.25, 2]], [1, 0], lr=0.3)
    path = tmp_path / "bn.html"
    t.html(path)
    page = data(t)
    _open(browser, path)
    select = browser.find_element(By.ID, "sample")
    for f in range(len(page["frames"])):
        if f:
            browser.find_element(By.ID, "next").click()
        for sample in (0, 1):
            select.find_elements(By.TAG_NAME, "option")[sample].click()
            shown = _check_frame(browser, page, f, sample)
    bn = t.stage("forward")[1]
    assert shown["v:bn1:2"] == bn["y"][1, 2]                  # sample 2 is selected
    assert shown["v:dr1:0"] == t.stage("forward")[3]["y"][1, 0]
    assert _errors(browser) == []

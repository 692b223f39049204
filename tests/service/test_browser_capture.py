""" "Enrol from camera" on the admin page in a real headless Chromium: the site's gate camera is a live paced MJPEG
stream of a real LFW person turning their head; the admin picks the gate, gives the id and name, presses Start and
sees the countdown, the live preview with the face boxed and the frames kept, then "Enrolled", and finds the person
in the list. The pages are photographed into $FACEGATE_SCREENSHOTS (default: the test's temporary folder)."""

# ruff: noqa: F811  (the fixtures from browsing are test arguments by the same names)

from __future__ import annotations

from pathlib import Path

import pytest
from browsing import (  # noqa: F401  (fixtures)
    PASSWORD,
    browser,
    served_site,
    shots,
    sign_in,
    snap,
    visible,
    wait,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from walk_ups import bgr, walk_up

from evaluation.head_motion import ClipSpec
from evaluation.paced_stream import PacedStream
from gate.vision.faces import FacePipeline

pytestmark = pytest.mark.slow  # a server, a browser, a live stream and the shipped network (about a minute)

WALK = ClipSpec(width=640, height=480, fps=10, walk_s=3.0)
LOADED_PREVIEW = """const image = document.querySelector("#capture-preview");
return image && image.complete && image.naturalWidth > 0 ? [image.src, image.naturalWidth] : null;"""


def _text(driver: WebDriver, selector: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, selector).text


def _fill_in(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, "a[data-view=enrol]").click()
    form = wait(driver, lambda d: visible(d, "#capture-form"), what="the capture form")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#capture-gate option"), what="the gates to choose")
    assert [o.text for o in form.find_elements(By.CSS_SELECTOR, "#capture-gate option")] == ["front-door"]
    form.find_element(By.NAME, "employee_id").send_keys("E9")
    form.find_element(By.NAME, "name").send_keys("Colin Powell")
    frames = form.find_element(By.NAME, "frames")
    frames.clear()
    frames.send_keys("4")


def test_an_admin_enrols_a_person_from_the_gates_camera(browser: WebDriver, shots: Path, lfw_root: Path, tmp_path):
    frames = bgr(walk_up(lfw_root, "Colin_Powell", FacePipeline(), spec=WALK))
    stream = PacedStream(fps=WALK.fps, size=(WALK.width, WALK.height), images=frames)
    with stream, served_site(tmp_path, camera_source=stream.url) as (url, _config):
        browser.get(url)
        sign_in(browser, PASSWORD)
        wait(browser, lambda d: visible(d, "#view-events"), what="the events view")
        _fill_in(browser)
        browser.find_element(By.ID, "capture-start").click()
        count = wait(browser, lambda d: _text(d, "#capture-countdown"), what="the countdown")
        assert count in ("3", "2", "1")
        assert "Get ready: Colin Powell (E9) at front-door" in _text(browser, "#capture-progress")
        assert (
            visible(browser, "#capture-cancel") is not None
            and not browser.find_element(By.ID, "capture-start").is_enabled()
        )
        snap(browser, shots, "capture-1-countdown")
        # the preview is a new image for each frame: read it in one go, not by a reference that goes stale
        src, width = wait(browser, lambda d: d.execute_script(LOADED_PREVIEW), 60, "the camera's preview")
        assert src.startswith(f"{url}/api/capture/preview") and width == WALK.width
        assert "good frames kept" in _text(browser, "#capture-progress")
        # a frame kept, to photograph its box (the capture may be over by then: the last frame stays shown)
        wait(browser, lambda d: not _text(d, "#capture-progress").startswith("0 of"), 60, "a frame kept")
        snap(browser, shots, "capture-2-preview")
        wait(browser, lambda d: "Enrolled" in _text(d, "#capture-status"), 120, "the outcome")
        assert _text(browser, "#capture-status") == "Enrolled E9: 4 of 4 faces added"
        assert _text(browser, "#capture-progress").startswith("4 of 4 good frames kept")
        assert visible(browser, "#capture-cancel") is None
        snap(browser, shots, "capture-3-enrolled")
        browser.find_element(By.CSS_SELECTOR, "a[data-view=people]").click()
        card = wait(browser, lambda d: visible(d, '#people-list li[data-id="E9"]'), what="the person")
        assert "4 photos" in card.text
        snap(browser, shots, "capture-4-people")

"""The admin page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium), as an admin uses it while a gate runs on a live stream in which a person walks up: sign in, see the
person turned away, enrol them from three photos and read each photo's outcome, find them in the list, see their
grant arrive with its face (no reload), see the gate running with what its camera sees, then stopped, deactivate
with a confirmation, sign out, and be refused once signed out. Every page is photographed into
$FACEGATE_SCREENSHOTS (default: the test's temporary folder) to be looked at."""

# ruff: noqa: F811  (the fixtures from browsing are test arguments by the same names)

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browsing import (  # noqa: F401  (fixtures)
    DESKTOP,
    PASSWORD,
    PERSON,
    PHONE,
    SPEC,
    STRANGER,
    browser,
    enrol,
    image_loaded,
    running_gate,
    server,
    shots,
    sign_in,
    snap,
    visible,
    wait,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow  # a server, a browser and a gate process (about a minute)


def test_an_admin_enrols_on_the_page_and_watches_the_gate_let_them_in(server, browser, shots, lfw_root, tmp_path):
    base, config = server
    browser.get(base + "/")
    sign_in(browser, "wrong password")
    error = wait(browser, lambda d: d.find_element(By.ID, "signin-error").text, what="the sign-in refusal")
    assert "wrong name or password" in error
    snap(browser, shots, "01-sign-in-refused")
    sign_in(browser, PASSWORD)
    wait(browser, lambda d: visible(d, "#view-events"), what="the events view")
    assert browser.find_element(By.ID, "who").text == "ada · admin"
    with running_gate(config, lfw_root, tmp_path):
        denied = wait(browser, lambda d: visible(d, "li.event[data-decision=denied]"), 120, "a denial before enrolling")
        assert "Unknown face" in denied.text  # nobody is enrolled yet: the person is turned away too
        enrolled_at = enrol_on_the_page(browser, lfw_root, shots)
        see_them_in_the_list(browser, shots)
        browser.find_element(By.CSS_SELECTOR, "a[data-view=events]").click()
        # the page is not reloaded: the events arrive by themselves
        granted = wait(browser, lambda d: visible(d, "li.event[data-decision=granted]"), 60, "the granted event")
        print(f"enrolled on the page -> grant shown on the page: {time.monotonic() - enrolled_at:.1f} s")
        assert "Amanda Bynes (E7)" in granted.text and "front-door" in granted.text
        wait(browser, lambda d: image_loaded(d, granted.find_element(By.CSS_SELECTOR, "img.face")), what="its face")
        snap(browser, shots, "04-events-live")
        see_the_gate(browser, shots)
    see_the_gate_stopped(browser, shots)
    see_the_events_on_a_phone(browser, shots)
    deactivate_with_confirmation(browser, shots)
    sign_out_and_be_refused(browser, base, shots)


def enrol_on_the_page(browser: WebDriver, lfw_root: Path, shots: Path) -> float:
    """Enrols the person from three photos (one shows two faces); returns when the page showed the outcome."""
    photos = [lfw_root / PERSON / f"{PERSON}_000{n}.jpg" for n in (1, 2, 3)]
    outcomes = enrol(browser, photos)
    enrolled_at = time.monotonic()
    assert [(photo, status) for photo, status, _ in outcomes] == [
        (photos[0].name, "added"), (photos[1].name, "rejected"), (photos[2].name, "added")
    ]  # fmt: skip
    assert outcomes[1][2] == "SEVERAL_FACES"
    assert "Enrolled E7: 2 of 3 photos added" in browser.find_element(By.ID, "enrol-status").text
    snap(browser, shots, "02-enrol-outcomes")
    return enrolled_at


def see_them_in_the_list(browser: WebDriver, shots: Path) -> None:
    browser.find_element(By.CSS_SELECTOR, "a[data-view=people]").click()
    card = wait(browser, lambda d: visible(d, "li.person[data-id=E7]"), what="the person in the list")
    assert "Amanda Bynes" in card.text and "2 photos" in card.text and "active" in card.text
    wait(browser, lambda d: image_loaded(d, card.find_element(By.CSS_SELECTOR, "img.face")), what="the thumbnail")
    snap(browser, shots, "03-people")


def see_the_gate(browser: WebDriver, shots: Path) -> None:
    """The running gate, its camera streaming, and its snapshot: the live frame at the snapshot's size."""
    browser.find_element(By.CSS_SELECTOR, "a[data-view=gates]").click()
    card = wait(browser, lambda d: visible(d, "li.gate[data-gate=front-door]"), what="the gate's status")
    assert "running" in card.find_element(By.CSS_SELECTOR, ".state").text and "Last decision" in card.text
    assert "streaming" in card.text
    image = wait(browser, lambda d: visible(d, "li.gate[data-gate=front-door] .snapshot img"), what="the snapshot")
    wait(browser, lambda d: image_loaded(d, image), what="the snapshot to load")
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
    assert size == [SPEC.width, SPEC.height]  # [snapshot] max_side 640: the camera's frame as it is
    wait(browser, lambda d: "dlib-resnet" in d.find_element(By.ID, "model-line").text, what="the model line")
    snap(browser, shots, "05-gates")
    browser.set_window_size(*PHONE)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"the Gates view scrolls sideways on a phone ({width} px)"
    snap(browser, shots, "05-gates-phone")
    browser.set_window_size(*DESKTOP)


def see_the_gate_stopped(browser: WebDriver, shots: Path) -> None:
    """After SIGTERM: the gate reads stopped, and its snapshot is gone from the page."""
    stopped = "li.gate[data-gate=front-door][data-state=stopped]"
    card = wait(browser, lambda d: visible(d, stopped), 30, "the gate stopped")
    assert "stopped" in card.find_element(By.CSS_SELECTOR, ".state").text and "off (the gate stopped)" in card.text
    assert not card.find_elements(By.CSS_SELECTOR, ".snapshot")
    snap(browser, shots, "05b-gate-stopped")


def see_the_events_on_a_phone(browser: WebDriver, shots: Path) -> None:
    browser.set_window_size(*PHONE)
    browser.find_element(By.CSS_SELECTOR, "a[data-view=events]").click()
    wait(browser, lambda d: visible(d, "li.event[data-decision=granted]"), what="the events on a phone")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"the page scrolls sideways on a phone ({width} px)"
    snap(browser, shots, "06-phone-events")
    browser.set_window_size(*DESKTOP)


def deactivate_with_confirmation(browser: WebDriver, shots: Path) -> None:
    browser.find_element(By.CSS_SELECTOR, "a[data-view=people]").click()
    card = wait(browser, lambda d: visible(d, "li.person[data-id=E7]"), what="the person in the list")
    card.find_element(By.XPATH, ".//button[text()='Deactivate']").click()
    dialog = wait(browser, lambda d: visible(d, "dialog#confirm"), what="the confirmation")
    assert "Stop letting Amanda Bynes (E7) in" in dialog.text
    snap(browser, shots, "07-confirm-deactivate")
    dialog.find_element(By.XPATH, ".//button[@value='cancel']").click()
    time.sleep(0.5)
    card = visible(browser, "li.person[data-id=E7]")
    assert card is not None and "deactivated" not in card.text  # cancelled: nothing changed
    card.find_element(By.XPATH, ".//button[text()='Deactivate']").click()
    dialog = wait(browser, lambda d: visible(d, "dialog#confirm"), what="the confirmation")
    dialog.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: "deactivated" in d.find_element(By.CSS_SELECTOR, "li.person[data-id=E7]").text)


def sign_out_and_be_refused(browser: WebDriver, base: str, shots: Path) -> None:
    browser.find_element(By.ID, "sign-out").click()
    wait(browser, lambda d: visible(d, "#signin-form"), what="the sign-in form after signing out")
    assert browser.find_element(By.ID, "signin-error").text == "You are signed out."
    browser.get(base + "/#people")
    wait(browser, lambda d: visible(d, "#signin-form"), what="the sign-in form for a signed-out visitor")
    assert not visible(browser, "#view-people") and not browser.find_elements(By.CSS_SELECTOR, "li.person")
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; fetch('/api/people').then((r) => done(r.status));"
    )
    assert status == 401
    snap(browser, shots, "08-signed-out")
    browser.get(base + "/docs")  # the API's documentation (no data in it), from the server's own files
    wait(browser, lambda d: "FaceGate" in d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text, 30)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"), what="the endpoints")
    snap(browser, shots, "09-api-docs")

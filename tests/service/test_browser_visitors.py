"""The Visitors view in a real headless Chromium against `facegate serve` with the shipped model: a stranger (Tony
Blair) was turned away twice, from two different photos, and another (George W Bush) once; the admin opens
Visitors, sees the stranger's two faces in one group and the other apart, dismisses the other, enrols the stranger
as a new person in one step. Screenshots into $FACEGATE_SCREENSHOTS."""

# ruff: noqa: F811  (the fixtures from browsing are test arguments by the same names)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from browsing import PASSWORD, browser, image_loaded, server, shots, sign_in, snap, visible, wait  # noqa: F401
from selenium.webdriver.common.by import By

from enrollment.roster import show_person
from gate.config import load_settings
from gate.runtime.parts import Runtime, open_database
from gate.store.events import AccessEventRecord
from gate.vision.imageio import encode_crop, load_image

pytestmark = pytest.mark.slow  # a server and a browser

WALK_UPS = (("Tony_Blair", 1, 3600), ("Tony_Blair", 3, 600), ("George_W_Bush", 1, 60))  # person, photo, seconds ago


def turned_away(config: Path, lfw_root: Path) -> dict[str, list[str]]:
    """Denied events keeping the faces of WALK_UPS, as the gate keeps them (through its pipeline); each person's
    event uids."""
    runtime = Runtime.open(load_settings(config))
    uids: dict[str, list[str]] = {}
    try:
        for person, number, ago_s in WALK_UPS:
            found = runtime.pipeline.one_face(load_image(lfw_root / person / f"{person}_{number:04d}.jpg"))
            assert not isinstance(found, str)
            uid = uuid4().hex
            when = datetime.now(UTC) - timedelta(seconds=ago_s)
            crop = encode_crop(found.crop, 80)
            runtime.database.record_event(
                AccessEventRecord(when, "front-door", None, None, "denied", "UNKNOWN_FACE", None, uid, crop=crop)
            )
            uids.setdefault(person, []).append(uid)
        return uids
    finally:
        runtime.close()


def test_an_admin_sees_a_returning_stranger_as_one_group_dismisses_one_and_enrols_the_other(
    server, browser, shots, lfw_root
):
    base, config = server
    uids = turned_away(config, lfw_root)
    browser.get(base + "/")
    sign_in(browser, PASSWORD)
    wait(browser, lambda d: visible(d, "a[data-view=visitors]"), what="the Visitors tab").click()
    rows = wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "li.visitor")) == 2 and d.find_elements(
        By.CSS_SELECTOR, "li.visitor"), 60, "two groups")  # fmt: skip
    tony, george = rows
    assert "Visitor 1" in tony.text and "seen 2 times" in tony.text and "front-door" in tony.text
    faces = tony.find_elements(By.CSS_SELECTOR, "img.face")
    assert len(faces) == 2 and len(george.find_elements(By.CSS_SELECTOR, "img.face")) == 1
    wait(browser, lambda d: all(image_loaded(d, face) for face in faces), what="the stranger's faces")
    assert "3 faces of the last 30 days in 2 groups" in browser.find_element(By.ID, "visitors-note").text
    snap(browser, shots, "visitors-01-two-groups")

    george.find_element(By.XPATH, ".//button[text()='Dismiss']").click()
    wait(browser, lambda d: visible(d, "dialog#confirm"), what="the dismissal question")
    snap(browser, shots, "visitors-02-dismiss-asked")
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: "1 face dismissed" in d.find_element(By.ID, "toast").text, what="the dismissal")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "li.visitor")) == 1, what="one group left")
    snap(browser, shots, "visitors-03-dismissed")

    row = browser.find_element(By.CSS_SELECTOR, "li.visitor")
    row.find_element(By.XPATH, ".//button[text()='Enrol…']").click()
    dialog = wait(browser, lambda d: visible(d, "dialog#enrol-visitor"), what="the enrol dialog")
    dialog.find_element(By.NAME, "employee_id").send_keys("E050")
    dialog.find_element(By.NAME, "name").send_keys("Tony Blair")
    snap(browser, shots, "visitors-04-enrol-asked")
    dialog.find_element(By.ID, "enrol-visitor-ok").click()
    toast = wait(browser, lambda d: "enrolled" in d.find_element(By.ID, "toast").text, 60, "the enrolment") and (
        browser.find_element(By.ID, "toast").text
    )
    assert toast == "Tony Blair (E050) enrolled from 2 faces."
    wait(browser, lambda d: visible(d, "#visitors-empty"), what="no visitors left")
    snap(browser, shots, "visitors-05-enrolled")

    database = open_database(load_settings(config))
    try:
        templates = show_person(database, "E050").templates
        assert [t.origin for t in templates] == ["event", "event"] and all(t.event_id for t in templates)
    finally:
        database.close()
    assert len(uids["Tony_Blair"]) == 2

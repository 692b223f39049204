"""Confirming a door event's face on the Events page, in a real headless Chromium against `facegate serve` with the
shipped model: Colin Powell is enrolled and was turned away at the door (a denied event keeping a face of another
photo of him); the admin clicks "This was…", picks him, sees the result and the event marked "confirmed as", then
undoes it. Screenshots into $FACEGATE_SCREENSHOTS."""

# ruff: noqa: F811  (the fixtures from browsing are test arguments by the same names)

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from browsing import PASSWORD, browser, server, shots, sign_in, snap, visible, wait  # noqa: F401  (fixtures)
from selenium.webdriver.common.by import By

from enrollment import add_person
from enrollment.roster import show_person
from gate.config import load_settings
from gate.runtime.parts import Runtime
from gate.store.events import AccessEventRecord
from gate.vision.imageio import encode_crop, load_image

pytestmark = pytest.mark.slow  # a server and a browser

PERSON = "Colin_Powell"


def turned_away(config: Path, lfw_root: Path) -> int:
    """Enrols Colin Powell (E1) and Tony Blair (E2) from two photos each, and records a denied event keeping the face
    of a third photo of Colin, as the gate keeps it; the event's number."""
    runtime = Runtime.open(load_settings(config))
    try:
        for employee_id, name, person in (("E1", "Colin Powell", PERSON), ("E2", "Tony Blair", "Tony_Blair")):
            add_person(runtime, employee_id, name, [lfw_root / person / f"{person}_000{n}.jpg" for n in (1, 2)])
        found = runtime.pipeline.one_face(load_image(lfw_root / PERSON / f"{PERSON}_0004.jpg"))
        assert not isinstance(found, str)
        uid = uuid4().hex
        crop = encode_crop(found.crop, 80)
        event = AccessEventRecord(
            datetime.now(UTC), "front-door", None, 0.93, "denied", "BELOW_THRESHOLD", "E1", uid, crop=crop
        )
        runtime.database.record_event(event)
        return runtime.database.event_marks([uid])[uid].event_id
    finally:
        runtime.close()


def test_an_admin_confirms_a_denied_face_on_the_events_page_and_undoes_it(server, browser, shots, lfw_root):
    base, config = server
    event = turned_away(config, lfw_root)
    browser.get(base + "/")
    sign_in(browser, PASSWORD)
    row = wait(browser, lambda d: visible(d, "li.event[data-decision=denied]"), what="the denied event")
    button = wait(browser, lambda d: row.find_element(By.XPATH, ".//button[text()='This was…']"), what="This was…")
    snap(browser, shots, "confirm-01-denied-event")
    button.click()
    dialog = wait(browser, lambda d: visible(d, "dialog#confirm-event"), what="the question")
    field = dialog.find_element(By.NAME, "employee_id")
    assert field.get_attribute("value") == "E1"  # the nearest enrolled person, offered
    assert {
        o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#confirm-event-names option")
    } == {
        "E1",
        "E2",
    }
    snap(browser, shots, "confirm-02-who-was-it")
    dialog.find_element(By.ID, "confirm-event-ok").click()
    toast = wait(browser, lambda d: visible(d, "#toast"), what="the result")
    assert "Added to Colin Powell (E1)'s faces: score 0.9" in toast.text
    marked = wait(browser, lambda d: visible(d, "li.event .confirmed-as span"), what="the event marked")
    assert marked.text == "confirmed as Colin Powell (E1)"
    snap(browser, shots, "confirm-03-confirmed")
    assert [t.event_id for t in show_person_templates(config)] == [None, None, event]
    browser.find_element(By.XPATH, "//li[contains(@class, 'event')]//button[text()='Undo']").click()
    wait(browser, lambda d: "Undone" in d.find_element(By.ID, "toast").text, what="the undo")
    wait(browser, lambda d: visible(d, "li.event button.quiet") and not visible(d, "li.event .confirmed-as span"))
    snap(browser, shots, "confirm-04-undone")
    assert [t.event_id for t in show_person_templates(config)] == [None, None]


def show_person_templates(config: Path) -> list:
    from gate.runtime.parts import open_database

    database = open_database(load_settings(config))
    try:
        return show_person(database, "E1").templates
    finally:
        database.close()

"""A person's page in a real headless Chromium: enrol a person from three LFW photos on the page, find the
strength badge and the link on the People page, open their page (templates with where each came from, strength,
changes), remove one template through the confirmation dialog, rename them, and see the audit trail grow. Every
page is photographed into $FACEGATE_SCREENSHOTS to be looked at."""

# ruff: noqa: F811  (the fixtures from browsing are test arguments by the same names)

from __future__ import annotations

import pytest
from browsing import PASSWORD, PERSON, browser, enrol, image_loaded, server, shots, sign_in, snap, visible, wait  # noqa: F401
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow  # a server and a browser, three real faces embedded (about 30 s)


def open_person_page(browser: WebDriver, shots) -> None:  # noqa: ANN001
    browser.find_element(By.CSS_SELECTOR, "a[data-view=people]").click()
    card = wait(browser, lambda d: visible(d, "li.person[data-id=E7]"), what="the person in the list")
    badge = wait(browser, lambda d: card.find_element(By.CSS_SELECTOR, ".pill.strength"), what="a badge")
    assert badge.text in ("strong", "weak") and badge.get_attribute("title")
    snap(browser, shots, "person-01-people-with-strength")
    card.find_element(By.LINK_TEXT, "Amanda Bynes").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#person-templates li.template")) == 3, 30,
         "three templates on the person's page")  # fmt: skip
    assert browser.current_url.endswith("#person/E7")


def test_a_person_page_shows_templates_and_an_admin_removes_one_and_renames(server, browser, shots, lfw_root):
    base, _config = server
    browser.get(base + "/")
    sign_in(browser, PASSWORD)
    wait(browser, lambda d: visible(d, "#view-events"), what="the events view")
    photos = [lfw_root / PERSON / f"{PERSON}_000{n}.jpg" for n in (1, 3, 4)]
    assert [status for _, status, _ in enrol(browser, photos)] == ["added"] * 3
    open_person_page(browser, shots)
    page = browser.find_element(By.ID, "view-person")
    templates = page.find_elements(By.CSS_SELECTOR, "li.template")
    assert all("photo Amanda_Bynes_000" in t.text and "quality" in t.text for t in templates)
    wait(browser, lambda d: all(image_loaded(d, t.find_element(By.CSS_SELECTOR, "img.face")) for t in templates))
    strength = browser.find_element(By.ID, "person-strength").text
    assert "Their own templates agree: worst pair" in strength and "Nearest other person: nobody" in strength
    assert "enrol" in page.find_element(By.CSS_SELECTOR, "table.audit").text
    snap(browser, shots, "person-02-page")
    remove_one_template(browser, shots)
    rename(browser, shots)
    # the list may be drawn again under the click: look again until the click lands
    wait(browser, lambda d: d.find_element(By.LINK_TEXT, "Amanda L. Bynes").click() or True, what="the link")
    remove_one_template(browser, shots, left=1)  # one template left: weak, and the page says why
    badge = wait(browser, lambda d: visible(d, "#view-person .pill.weak"), what="the weak badge")
    assert "only one template" in badge.get_attribute("title")
    assert "Weak: only one template" in browser.find_element(By.ID, "person-strength").text
    snap(browser, shots, "person-05-weak")
    browser.get(base + "/#person/NOBODY")  # a person who is not there: said in one line
    wait(browser, lambda d: "no person with employee id" in d.find_element(By.ID, "view-person").text)


def remove_one_template(browser: WebDriver, shots, left: int = 2) -> None:  # noqa: ANN001
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#person-templates li.template")) == left + 1)
    first = browser.find_element(By.CSS_SELECTOR, "#person-templates li.template")
    template_id = first.get_attribute("data-template")
    first.find_element(By.XPATH, ".//button[text()='Remove']").click()
    dialog = wait(browser, lambda d: visible(d, "dialog#confirm"), what="the confirmation")
    assert f"Remove template {template_id} of Amanda" in dialog.text and "(photo Amanda_Bynes_000" in dialog.text
    snap(browser, shots, f"person-03-confirm-remove-{left}")
    dialog.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#person-templates li.template")) == left, 30,
         f"{left} templates left")  # fmt: skip
    assert not browser.find_elements(By.CSS_SELECTOR, f"li.template[data-template='{template_id}']")
    assert "remove_template" in browser.find_element(By.CSS_SELECTOR, "table.audit").text


def rename(browser: WebDriver, shots) -> None:  # noqa: ANN001
    field = browser.find_element(By.CSS_SELECTOR, "form.rename input[name=name]")
    field.clear()
    field.send_keys("Amanda L. Bynes")
    browser.find_element(By.CSS_SELECTOR, "form.rename button[type=submit]").click()
    wait(browser, lambda d: d.find_element(By.ID, "person-name").text == "Amanda L. Bynes", what="the new name")
    assert "rename" in browser.find_element(By.CSS_SELECTOR, "table.audit").text
    snap(browser, shots, "person-04-renamed")
    browser.find_element(By.LINK_TEXT, "← People").click()
    wait(browser, lambda d: "Amanda L. Bynes" in d.find_element(By.CSS_SELECTOR, "li.person[data-id=E7]").text)

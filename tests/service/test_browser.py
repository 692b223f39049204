"""The admin page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium), as an admin uses it while a gate runs on a live stream in which a person walks up: sign in, see the
person turned away, enrol them from three photos and read each photo's outcome, find them in the list, see their
grant arrive with its face (no reload), see the gate running with what its camera sees, then stopped, deactivate
with a confirmation, sign out, and be refused once signed out. Every page is photographed into
$FACEGATE_SCREENSHOTS (default: the test's temporary folder) to be looked at."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from facegate_process import facegate_command, free_port, serving

from evaluation.paced_stream import PacedStream, video_frames
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.vision.imageio import load_image

pytestmark = pytest.mark.slow  # a server, a browser and a gate process (about a minute)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (only where a browser exists)
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PASSWORD = "a long admin passphrase"
PERSON, STRANGER = "Amanda_Bynes", "Keith_Bogans"  # 0002 of the person shows two faces: refused, with its reason
DESKTOP, PHONE = (1280, 900), (390, 844)
SPEC = TurnstileSpec(width=640, height=480, fps=10, walk_s=3.0, gap_s=1.0, seed=5)


def site_config(folder: Path, port: int) -> Path:
    """The shipped model at a looser operating point than the default (1e-3 per comparison), one gate."""
    config = folder / "config.toml"
    config.write_text(
        '[camera]\ngate_id = "front-door"\n[decision]\ntarget_far = "0.001"\n'
        f'[database]\nurl = "sqlite:///{folder}/gate.db"\njournal_path = "{folder}/events.journal"\n'
        f'[gallery]\nindex_path = "{folder}/gallery.faiss"\n[service]\nport = {port}\n'
        "[snapshot]\nenabled = true\nevery_s = 1.0\n",  # the Gates view shows what the camera sees
        encoding="utf-8",
    )
    return config


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`facegate serve` on a free loopback port, with the admin account `ada` made by `facegate admin add`."""
    port = free_port()
    config = site_config(tmp_path, port)
    made = subprocess.run(
        facegate_command("--config", config, "admin", "add", "ada", "--password-stdin"), input=PASSWORD + "\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with serving(config, port) as running:
        yield running.url, config


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FACEGATE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver: WebDriver, check, timeout_s: float = 20, what: str = "the page"):  # noqa: ANN001, ANN201
    # the page redraws its lists as it polls: an element found a moment ago may be gone; look again
    return WebDriverWait(driver, timeout_s, 0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: check(d), message=f"timed out waiting for {what}"
    )


def visible(driver: WebDriver, selector: str) -> WebElement | None:
    found = [node for node in driver.find_elements(By.CSS_SELECTOR, selector) if node.is_displayed()]
    return found[0] if found else None


def image_loaded(driver: WebDriver, image: WebElement) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))


def snap(driver: WebDriver, folder: Path, name: str) -> None:
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    time.sleep(0.4)  # let the arrival highlight and images settle
    assert driver.save_screenshot(str(folder / f"{name}.png"))


def sign_in(driver: WebDriver, password: str) -> None:
    form = wait(driver, lambda d: visible(d, "#signin-form"), what="the sign-in form")
    for field, value in (("name", "ada"), ("password", password)):
        form.find_element(By.NAME, field).clear()
        form.find_element(By.NAME, field).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def enrol(driver: WebDriver, photos: list[Path]) -> list[tuple[str, str, str]]:
    driver.find_element(By.CSS_SELECTOR, "a[data-view=enrol]").click()
    form = wait(driver, lambda d: visible(d, "#enrol-form"), what="the enrolment form")
    form.find_element(By.NAME, "employee_id").send_keys("E7")
    form.find_element(By.NAME, "name").send_keys("Amanda Bynes")
    form.find_element(By.NAME, "photos").send_keys("\n".join(str(photo.resolve()) for photo in photos))
    form.find_element(By.ID, "enrol-submit").click()
    rows = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#enrol-outcomes tbody tr"), 120, "the outcomes")
    return [tuple(cell.text for cell in row.find_elements(By.TAG_NAME, "td")) for row in rows]  # type: ignore[misc]


@contextmanager
def running_gate(config: Path, lfw_root: Path, folder: Path) -> Iterator[subprocess.Popen]:
    """`facegate run` on a live stream (at camera pace, in a loop) in which the person walks up, then a stranger."""
    walkers = [("E7", load_image(lfw_root / PERSON / f"{PERSON}_0004.jpg"))]  # a photo that is not enrolled
    walkers.append(("stranger", load_image(lfw_root / STRANGER / f"{STRANGER}_0001.jpg")))
    frames = video_frames(render_turnstile(walkers, folder / "walk.mp4", SPEC)[0])
    stream = PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height), images=frames)
    command = facegate_command("--config", config, "run", "--source", stream.url)
    gate = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield gate
    finally:
        gate.send_signal(signal.SIGTERM)
        errors = gate.communicate(timeout=60)[1]
        stream.close()
    assert gate.returncode == 0, errors[-2000:]


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

"""The admin page in a real headless Chromium, for the browser tests: a served site with the admin `ada`, the
browser (Debian's chromium + chromium-driver, driven by Selenium), screenshots into $FACEGATE_SCREENSHOTS, and a
gate running on a live stream in which a person walks up. A test module imports the fixtures it uses and marks
itself slow."""

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


def site_config(folder: Path, port: int, camera_source: str | None = None) -> Path:
    """The shipped model at a looser operating point than the default (1e-3 per comparison), one gate (its camera
    `camera_source`, when given)."""
    config = folder / "config.toml"
    camera = f'source = "{camera_source}"\n' if camera_source else ""
    config.write_text(
        f'[camera]\ngate_id = "front-door"\n{camera}[decision]\ntarget_far = "0.001"\n'
        f'[database]\nurl = "sqlite:///{folder}/gate.db"\njournal_path = "{folder}/events.journal"\n'
        f'[gallery]\nindex_path = "{folder}/gallery.faiss"\n[service]\nport = {port}\n'
        "[snapshot]\nenabled = true\nevery_s = 1.0\n",  # the Gates view shows what the camera sees
        encoding="utf-8",
    )
    return config


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`facegate serve` on a free loopback port, with the admin account `ada` made by `facegate admin add`."""
    with served_site(tmp_path) as served:
        yield served


@contextmanager
def served_site(tmp_path: Path, camera_source: str | None = None) -> Iterator[tuple[str, Path]]:
    """The `server` fixture's site (its URL and config), its gate's camera `camera_source` when given."""
    port = free_port()
    config = site_config(tmp_path, port, camera_source)
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

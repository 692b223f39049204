"""deploy/: the systemd units pass `systemd-analyze verify` and its offline security review, keep their hardening
(the template the same as the plain gate unit, the admin server without devices), every directive they use is
explained in the guide, and the example configs validate and write only where the units let the service write."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gate.config import Settings, settings_from_dict

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
EXAMPLES = sorted((DEPLOY / "examples").glob("*.toml"))
GUIDE = ROOT / "docs" / "guide" / "running-as-a-service.md"
INSTALLED = "/opt/facegate/venv/bin/facegate"  # where the guide installs the command, as the units say
STATE = Path("/var/lib/facegate")  # StateDirectory=facegate: the only folder the services may write
MAX_EXPOSURE = 20  # systemd-analyze security's exposure x 10: 2.0, "OK" (an unhardened service is 9.6, "UNSAFE")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (Debian's systemd package; .ci/run installs it)"
)


def directives(unit: Path, section: str = "Service") -> list[tuple[str, str]]:
    """(key, value) of a unit's section in order; keys may repeat (DeviceAllow=, SystemCallFilter=)."""
    found, current = [], ""
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            key, _, value = line.partition("=")
            found.append((key.strip(), value.strip()))
    return found


def values(unit: Path, key: str) -> list[str]:
    return [value for found, value in directives(unit) if found == key]


def installed_here(folder: Path) -> list[str]:
    """The units copied into `folder` with ExecStart's command where this checkout has it, as a site that
    installed under /opt/facegate would have them: verify checks that the command exists and is executable."""
    facegate = Path(sys.executable).with_name("facegate")
    assert facegate.is_file(), f"{facegate}: the `facegate` command is not installed in this environment"
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8")
        assert INSTALLED in text, f"{unit.name}: ExecStart is not {INSTALLED}"
        (folder / unit.name).write_text(text.replace(INSTALLED, str(facegate)), encoding="utf-8")
    names = [unit.name for unit in UNITS]
    return [name.replace("@.", "@lobby.") for name in names]  # a template is checked through an instance


def test_deploy_has_the_gate_its_template_and_the_admin_server() -> None:
    names = [unit.name for unit in UNITS]
    assert names == ["facegate-admin.service", "facegate-gate.service", "facegate-gate@.service"]


@needs_systemd_analyze
def test_units_pass_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    names = installed_here(tmp_path)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and not done.stdout and not done.stderr, done.stdout + done.stderr


@needs_systemd_analyze
def test_verify_would_catch_a_misspelt_directive(tmp_path: Path) -> None:
    """The check above can fail: a misspelt hardening line is only a warning to systemd (and silently ignored)."""
    installed_here(tmp_path)
    unit = tmp_path / "facegate-gate.service"
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"), encoding="utf-8")
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", unit.name], cwd=tmp_path, capture_output=True, text=True)
    assert "Unknown key 'ProtectHomes'" in done.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("name", ["facegate-gate.service", "facegate-gate@lobby.service", "facegate-admin.service"])
def test_units_exposure_is_ok_in_systemds_security_review(tmp_path: Path, name: str) -> None:
    installed_here(tmp_path)
    command = [SYSTEMD_ANALYZE, "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}", "--no-pager", name]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    overall = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, overall


def test_template_has_the_gate_units_service_section_but_its_config() -> None:
    gate, template = DEPLOY / "facegate-gate.service", DEPLOY / "facegate-gate@.service"
    assert values(template, "ExecStart") == [f"{INSTALLED} --config /etc/facegate/%i.toml run"]

    def but_the_command(unit: Path) -> list[tuple[str, str]]:
        return [(key, value) for key, value in directives(unit) if key != "ExecStart"]

    assert but_the_command(gate) == but_the_command(template)


def test_gate_unit_notifies_is_watched_and_reaches_camera_and_relay_only() -> None:
    gate = DEPLOY / "facegate-gate.service"
    assert values(gate, "ExecStart") == [f"{INSTALLED} --config /etc/facegate/config.toml run"]
    assert values(gate, "Type") == ["notify"] and float(values(gate, "WatchdogSec")[0]) >= 10
    assert values(gate, "User") == ["facegate"] and values(gate, "SupplementaryGroups") == ["video dialout"]
    assert values(gate, "DevicePolicy") == ["closed"]
    assert values(gate, "DeviceAllow") == ["char-video4linux rw", "char-ttyUSB rw", "char-ttyACM rw"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_every_unit_is_hardened_and_writes_only_its_state_directory(unit: Path) -> None:
    expected = {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
        "StateDirectory": "facegate", "ConfigurationDirectory": "facegate", "Restart": "on-failure",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet": "", "UMask": "0077",
    }  # fmt: skip
    assert {key: values(unit, key) for key in expected} == {key: [value] for key, value in expected.items()}
    assert not values(unit, "ReadWritePaths") and not values(unit, "DynamicUser")


def test_admin_server_has_no_device_access() -> None:
    admin = DEPLOY / "facegate-admin.service"
    assert values(admin, "PrivateDevices") == ["yes"]
    assert not values(admin, "SupplementaryGroups") and not values(admin, "DeviceAllow")
    assert values(admin, "ExecStart") == [f"{INSTALLED} --config /etc/facegate/config.toml serve"]


def test_guide_explains_every_directive_the_units_use() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    used = {key for unit in UNITS for section in ("Unit", "Service", "Install") for key, _ in directives(unit, section)}
    unexplained = sorted(key for key in used if f"`{key}=" not in guide)
    assert not unexplained, f"{GUIDE.name} does not explain: {unexplained}"


def load_example(path: Path, data: dict) -> Settings:
    return settings_from_dict(data, source=str(path), base_dir=Path("/etc/facegate"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_writes_only_under_the_state_directory(path: Path) -> None:
    settings = load_example(path, tomllib.loads(path.read_text(encoding="utf-8")))
    written = [
        Path(settings.database_url.removeprefix("sqlite:///")),
        settings.resolve(settings.database.journal_path),
        settings.resolve(settings.gallery.index_path),
    ]
    assert all(file.parent == STATE for file in written), written
    assert settings.service.host == "127.0.0.1"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_validates_as_written(path: Path) -> None:
    settings = load_example(path, tomllib.loads(path.read_text(encoding="utf-8")))
    assert settings.actuator.kind in ("serial_relay", "http_relay")


def test_examples_cover_a_usb_webcam_with_a_serial_relay_and_rtsp_with_an_http_relay() -> None:
    found = {path.name: tomllib.loads(path.read_text(encoding="utf-8")) for path in EXAMPLES}
    kinds = {name: (data["camera"]["source"].split(":")[0], data["actuator"]["kind"]) for name, data in found.items()}
    assert kinds == {
        "rtsp-http-relay-gate.toml": ("rtsp", "http_relay"),
        "usb-webcam-gate.toml": ("/dev/video0", "serial_relay"),
    }

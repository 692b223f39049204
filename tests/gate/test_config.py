"""Config loading: each bad file is one FaceGateError naming the key; which file is read (flag, env, cwd)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from facegate.cli import app
from gate.config import CONFIG_ENV, Settings, camera_settings, config_path, load_settings
from gate.devices import torch_device
from gate.errors import FaceGateError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)


def test_load_settings_shipped_config_matches_defaults() -> None:
    settings = load_settings(REPO_CONFIG)
    assert settings.decision.target_far == "0.0001"
    assert settings.detector.thresholds == (0.6, 0.7, 0.7)
    assert settings.base_dir == REPO_CONFIG.parent


def test_shipped_config_repeats_the_defaults_exactly_and_names_every_key() -> None:
    """config.toml documents every setting with its default: a changed default or a new key fails here
    until the file says the same (the two cannot drift apart)."""
    text = REPO_CONFIG.read_text(encoding="utf-8")
    written = tomllib.loads(text)
    defaults = Settings().model_dump(mode="json", exclude={"base_dir": True, "cameras": True, "card": {"readers"}})
    assert "# [[cameras]]" in text  # several cameras: an example, commented out (the default is none)
    assert "# [[card.readers]]" in text  # badge readers: the same
    assert set(written) == set(defaults)
    for section, values in defaults.items():
        assert set(written[section]) | {"threshold"} >= set(values), f"[{section}] misses keys"
        for key, value in written[section].items():
            assert value == values[key], f"[{section}] {key} = {value!r} in config.toml, default {values[key]!r}"


CAMERAS = """
[[cameras]]
camera = { gate_id = "north", source = "north.mp4" }
[[cameras]]
camera = { gate_id = "south", source = "rtsp://cam2/stream", process_every = 2 }
actuator = { kind = "shell", command = ["open-door", "{person_id}"] }
"""


def test_cameras_each_lay_their_own_sections_over_the_config(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, "[camera]\nprocess_every = 3\n[decision]\nvotes_needed = 2\n" + CAMERAS))
    north, south = camera_settings(settings)
    assert (north.camera.gate_id, north.camera.process_every, north.actuator.kind) == ("north", 3, "log")
    assert (south.camera.gate_id, south.camera.process_every, south.actuator.kind) == ("south", 2, "shell")
    assert north.decision.votes_needed == south.decision.votes_needed == 2 and north.base_dir == tmp_path
    assert camera_settings(Settings()) == [Settings()]  # without [[cameras]]: the one [camera]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            'camera = { gate_id = "a", source = "0" }\ndatabase = { url = "sqlite://" }',
            r"cameras\[0\]\.database: shared",
        ),
        ('camera = { gate_id = "a" }', r"cameras\[0\]\.camera\.source: each camera needs its own"),
        ('camera = { gate_id = "a", source = "0", process_every = 0 }', r"cameras\[0\]\.camera\.process_every"),
        ('camera = { gate_id = "a", source = "0", frame_rate = 5 }', r"cameras\[0\]\.camera\.frame_rate: unknown key"),
        ('camera = { gate_id = "a", source = "0" }\nactuator = { kind = "shell" }', r"cameras\[0\]\.actuator"),
    ],
)
def test_a_bad_camera_entry_is_refused_naming_its_key(tmp_path: Path, entries: str, message: str) -> None:
    with pytest.raises(FaceGateError, match=message):
        load_settings(_write(tmp_path, f"[[cameras]]\n{entries}\n"))


def test_two_cameras_with_one_gate_id_are_refused(tmp_path: Path) -> None:
    twice = '[[cameras]]\ncamera = { gate_id = "a", source = "0" }\n' * 2
    with pytest.raises(FaceGateError, match=r"gate_id 'a' is given to more than one camera"):
        load_settings(_write(tmp_path, twice))


def test_load_settings_unknown_key_names_it(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"decision\.votes: unknown key"):
        load_settings(_write(tmp_path, "[decision]\nvotes = 3\n"))


def test_load_settings_unknown_section_names_it(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"detection: unknown key"):
        load_settings(_write(tmp_path, "[detection]\nmin_face_px = 20\n"))


def test_load_settings_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"detector\.min_face_px: .*'twenty'"):
        load_settings(_write(tmp_path, '[detector]\nmin_face_px = "twenty"\n'))


def test_load_settings_out_of_bounds_value_names_key(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"quality\.min_detector_prob: .*1\.5"):
        load_settings(_write(tmp_path, "[quality]\nmin_detector_prob = 1.5\n"))


def test_an_mtcnn_stage_threshold_outside_0_1_is_refused_naming_the_key(tmp_path: Path) -> None:
    """An MTCNN stage threshold of 7.0 was accepted."""
    with pytest.raises(FaceGateError, match=r"detector\.thresholds\.2: .*7") as error:
        load_settings(_write(tmp_path, "[detector]\nthresholds = [0.6, 0.7, 7.0]\n"))
    assert "\n" not in str(error.value)


def test_load_settings_value_not_allowed_names_key_and_choices(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"gallery\.kind: .*'exact' or 'hnsw'"):
        load_settings(_write(tmp_path, '[gallery]\nkind = "ivf"\n'))


def test_load_settings_votes_above_window_names_both(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"decision: .*votes_needed \(6\) must not exceed window \(5\)"):
        load_settings(_write(tmp_path, "[decision]\nvotes_needed = 6\nwindow = 5\n"))


def test_load_settings_shell_actuator_without_command_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"actuator: .*needs command"):
        load_settings(_write(tmp_path, '[actuator]\nkind = "shell"\n'))


def test_load_settings_base_dir_key_refused(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="base_dir: unknown key"):
        load_settings(_write(tmp_path, 'base_dir = "/"\n'))


def test_load_settings_missing_explicit_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"config file not found: .*nope\.toml"):
        load_settings(tmp_path / "nope.toml")


def test_load_settings_invalid_toml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[decision\nwindow = 5\n")
    with pytest.raises(FaceGateError, match=r"config\.toml: not valid TOML"):
        load_settings(path)


def test_load_settings_not_utf8_is_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[camera]\ngate_id = "\xff"\n')
    with pytest.raises(FaceGateError, match="not valid TOML"):
        load_settings(path)


def test_load_settings_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[database]\nurl = "sqlite:///data/gate.db"\n'))
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'gate.db'}"
    assert settings.resolve("data/gallery.faiss") == tmp_path.resolve() / "data" / "gallery.faiss"


def test_load_settings_settings_frozen(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, ""))
    with pytest.raises(ValueError, match="frozen"):
        settings.decision.window = 9  # type: ignore[misc]


def test_config_path_env_var_used_without_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = _write(tmp_path, "[decision]\nwindow = 7\n", "env.toml")
    monkeypatch.setenv(CONFIG_ENV, str(env_file))
    assert config_path() == env_file
    assert load_settings().decision.window == 7


def test_config_path_flag_beats_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(_write(tmp_path, "[decision]\nwindow = 7\n", "env.toml")))
    flag_file = _write(tmp_path, "[decision]\nwindow = 9\n", "flag.toml")
    assert config_path(flag_file) == flag_file
    assert load_settings(flag_file).decision.window == 9


def test_load_settings_env_var_to_missing_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.toml"))
    with pytest.raises(FaceGateError, match=r"config file not found: .*gone\.toml"):
        load_settings()


def test_load_settings_no_file_anywhere_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.toml here
    settings = load_settings()
    assert settings.decision.window == 5 and settings.gallery.kind == "exact"


def test_load_settings_default_file_in_cwd_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "[decision]\nwindow = 8\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().decision.window == 8


def test_cli_config_flag_beats_broken_env_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(_write(tmp_path, "[decision]\nvotes = 1\n", "env.toml")))
    good = _write(tmp_path, "", "flag.toml")
    assert CliRunner().invoke(app, ["--config", str(good), "evaluate", "--help"]).exit_code == 0
    outcome = CliRunner().invoke(app, ["evaluate", "--help"])
    assert isinstance(outcome.exception, FaceGateError)
    assert "env.toml: decision.votes: unknown key" in str(outcome.exception)


def test_a_config_path_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    """A folder as --config gave an IsADirectoryError traceback (exit 1)."""
    with pytest.raises(FaceGateError, match="cannot read config file") as error:
        load_settings(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_cuda_device_on_a_machine_without_one_is_one_line() -> None:
    """`[model] device = "cuda"` without a GPU gave torch's RuntimeError traceback."""
    with pytest.raises(FaceGateError, match=r"model.device = .cuda., but this machine has no usable CUDA GPU"):
        torch_device("cuda", "model.device")
    with pytest.raises(FaceGateError, match="detector.device = 'gpu7' is not a device"):
        torch_device("gpu7", "detector.device")
    assert torch_device("cpu", "model.device").type == "cpu"

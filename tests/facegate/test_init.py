"""`facegate init` and the config it writes; which config a command finds, and the one-line refusal of the
commands that keep site data when none is found."""

from __future__ import annotations

import re
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from facegate_process import facegate_command
from typer.testing import CliRunner

from facegate.cli import app
from facegate.commands.init import DATA_FOLDER, KEY_NAME
from facegate.config_file import template_text
from gate.config import CONFIG_ENV, SYSTEM_CONFIG, Settings, config_path, config_search, load_settings
from gate.errors import FaceGateError
from gate.store.encryption import load_cipher, parse_key
from service.accounts import check_password

PASSWORD = "correct horse battery"


def invoke(*args: str, stdin: str | None = None) -> str:
    outcome = CliRunner().invoke(app, list(args), input=stdin)
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


# --- the template ---------------------------------------------------------------------------------------------


def test_the_shipped_template_is_the_repositorys_config() -> None:
    assert template_text() == (Path(__file__).resolve().parents[2] / "config.toml").read_text(encoding="utf-8")


def test_the_template_gives_every_setting_its_default_and_names_every_one() -> None:
    """A changed default, or a new setting without its line (a commented one for those with no value by
    default), fails here: the file `init` writes documents everything."""
    text = template_text()
    written = tomllib.loads(text)
    defaults = Settings().model_dump(mode="json", exclude={"base_dir"})
    for section, values in defaults.items():
        if not isinstance(values, dict):  # [[cameras]]: a list, none by default
            assert values == [] and section not in written and f"# [[{section}]]" in text
            continue
        for key, value in values.items():
            if key in written.get(section, {}):
                assert written[section][key] == value, f"[{section}] {key} = {written[section][key]!r}, not {value!r}"
            else:  # no value by default: shown commented out
                assert value in (None, []), f"[{section}] {key} is missing"
                assert re.search(rf"^# ({key} =|\[\[{section}\.{key}\]\])", text, re.MULTILINE), f"[{section}] {key}"
    assert set(written) <= set(defaults)
    assert settings_paths_lie_in_data(Settings())


def settings_paths_lie_in_data(settings: Settings) -> bool:
    return all(
        path.startswith(f"{DATA_FOLDER}/")
        for path in (settings.database.url.removeprefix("sqlite:///"), settings.database.journal_path,
                     settings.gallery.index_path)
    )  # fmt: skip


# --- facegate init --------------------------------------------------------------------------------------------


def test_init_yes_makes_config_private_data_folder_and_key_and_the_site_works(tmp_path: Path) -> None:
    site = tmp_path / "site"
    output = invoke("init", str(site), "--yes")
    config = site / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert [line for line in text.splitlines() if not line.startswith("key_file =")] == [
        line for line in template_text().splitlines() if not line.startswith("key_file =")
    ]
    assert stat.S_IMODE((site / DATA_FOLDER).stat().st_mode) == 0o700
    assert stat.S_IMODE((site / KEY_NAME).stat().st_mode) == 0o600
    settings = load_settings(config)
    assert settings.encryption.key_file == KEY_NAME and settings.base_dir == site.resolve()  # relative: moves along
    cipher = load_cipher(settings)
    assert cipher is not None and cipher.unseal(parse_key((site / KEY_NAME).read_text(), "k").seal(b"x")) == b"x"
    assert f"facegate --config {config} doctor" in output and f"facegate --config {config} run" in output
    assert "admin add NAME" in output  # --yes makes no account: the next steps say how
    assert invoke("--config", str(config), "enroll", "list").startswith("nobody is enrolled yet")
    assert (site / DATA_FOLDER / "facegate.db").exists()


def test_init_refuses_an_existing_config_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("# mine\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match=r"config\.toml exists: it is never overwritten"):
        invoke("init", str(tmp_path), "--yes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == "# mine\n"


def test_init_asks_states_the_password_rule_first_and_asks_again_for_a_short_one(no_config_anywhere: Path) -> None:
    answers = f"n\ny\nada\nshort\n{PASSWORD}\n{PASSWORD}\n"  # no key; an account named ada
    output = invoke("init", stdin=answers)  # here: the current folder
    rule = output.index("The password needs at least 10 characters.")
    assert rule < output.index("password:") < output.index("too short (5 characters): at least 10; try again")
    assert "facegate doctor" in output and "facegate run" in output and "admin add NAME" not in output
    settings = load_settings(no_config_anywhere / "config.toml")
    assert settings.encryption.key_file == "" and not (no_config_anywhere / KEY_NAME).exists()
    assert config_path() == Path("config.toml")  # found here now, so the commands work without --config
    from gate.runtime.parts import open_database

    assert check_password(open_database(settings), "ada", PASSWORD) is not None


def test_init_with_flags_asks_nothing_and_a_refused_account_leaves_no_config(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="at least 10 characters"):
        invoke("init", str(tmp_path), "--no-key", "--admin", "ada", "--password-stdin", stdin="short\n")
    assert not (tmp_path / "config.toml").exists()  # so init can simply be run again
    output = invoke("init", str(tmp_path), "--key", "--admin", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    assert "account ada added (admin), to sign in to the admin page" in output and "?" not in output
    assert load_settings(tmp_path / "config.toml").encryption.key_file == KEY_NAME


def test_init_keeps_a_key_file_already_there(tmp_path: Path) -> None:
    invoke("init", str(tmp_path), "--yes")
    key = (tmp_path / KEY_NAME).read_text()
    (tmp_path / "config.toml").unlink()
    assert f"kept  {tmp_path / KEY_NAME}" in invoke("init", str(tmp_path), "--yes")
    assert (tmp_path / KEY_NAME).read_text() == key  # what it sealed stays readable


def data_files(settings: Settings) -> list[Path]:
    """Where the site's database, journal and index lie."""
    return [
        Path(settings.database_url.removeprefix("sqlite:///")),
        settings.resolve(settings.database.journal_path),
        settings.resolve(settings.gallery.index_path),
    ]


def test_init_data_puts_database_journal_and_index_in_that_folder_by_absolute_paths(tmp_path: Path) -> None:
    """The service layout: the config's folder read-only to the service, its data in a folder of its own."""
    site, state = tmp_path / "etc", tmp_path / "var" / "facegate"
    output = invoke("init", str(site), "--data", str(state), "--yes")
    assert f"made  {state}/ (owner-only)" in output
    settings = load_settings(site / "config.toml")
    assert settings.database.url == f"sqlite:///{state}/facegate.db"  # absolute: the folders need not move together
    assert settings.database.journal_path == f"{state}/events.journal"
    assert settings.gallery.index_path == f"{state}/gallery.faiss"
    assert [path.parent for path in data_files(settings)] == [state] * 3
    assert settings.encryption.key_file == KEY_NAME  # the key stays beside the config, out of the data's backups
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert sorted(path.name for path in site.iterdir()) == ["config.toml", KEY_NAME]  # no data/ under the config
    text = (site / "config.toml").read_text(encoding="utf-8")
    assert re.search(r'^url = "sqlite:///.*/facegate\.db" +# any SQLAlchemy URL', text, re.MULTILINE)  # comment kept
    assert invoke("--config", str(site / "config.toml"), "enroll", "list").startswith("nobody is enrolled yet")
    assert (state / "facegate.db").exists() and not (site / DATA_FOLDER).exists()


def test_init_relative_data_inside_the_config_folder_stays_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    invoke("init", "site", "--data", "site/state", "--yes")  # PATH relative to here, the setting to the config
    (tmp_path / "site").rename(tmp_path / "moved")
    settings = load_settings(tmp_path / "moved" / "config.toml")
    assert settings.database.url == "sqlite:///state/facegate.db"  # relative to the config: they move together
    assert [path.parent for path in data_files(settings)] == [tmp_path / "moved" / "state"] * 3


def test_init_data_takes_an_empty_or_facegate_folder_and_refuses_another(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    empty.chmod(0o755)
    assert f"kept  {empty}/ (already there; now owner-only)" in invoke("init", str(tmp_path / "a"), "--data",
                                                                        str(empty), "--yes")  # fmt: skip
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700
    invoke("--config", str(tmp_path / "a" / "config.toml"), "enroll", "list")  # the database made there
    invoke("init", str(tmp_path / "b"), "--data", str(empty), "--yes")  # now FaceGate's: a new config for it
    assert load_settings(tmp_path / "b" / "config.toml").database.url == f"sqlite:///{empty}/facegate.db"
    other = tmp_path / "home"
    other.mkdir(mode=0o755)
    other.chmod(0o755)
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FaceGateError, match=r"holds files that are not FaceGate's \(notes\.txt, \.\.\.\)"):
        invoke("init", str(tmp_path / "c"), "--data", str(other), "--yes")
    assert not (tmp_path / "c").exists() and stat.S_IMODE(other.stat().st_mode) == 0o755  # nothing touched
    for name in ("photos.txt", "report.pdf", "facegate.db.old"):  # one name like FaceGate's among others
        (other / name).write_text("mine", encoding="utf-8")
    with pytest.raises(FaceGateError, match=r"holds files that are not FaceGate's \(notes\.txt, \.\.\.\)"):
        invoke("init", str(tmp_path / "c"), "--data", str(other), "--yes")
    assert not (tmp_path / "c").exists() and stat.S_IMODE(other.stat().st_mode) == 0o755


def test_init_key_file_puts_the_key_there_but_never_in_the_data_folder(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "gate.key"
    invoke("init", str(tmp_path / "site"), "--data", str(tmp_path / "state"), "--key-file", str(key), "--no-admin")
    settings = load_settings(tmp_path / "site" / "config.toml")
    assert settings.encryption.key_file == str(key) and stat.S_IMODE(key.stat().st_mode) == 0o600  # no question asked
    assert load_cipher(settings) is not None
    with pytest.raises(FaceGateError, match="--key-file PATH or --no-key, not both"):
        invoke("init", str(tmp_path / "x"), "--key-file", str(key), "--no-key", "--yes")
    with pytest.raises(FaceGateError, match=r"would lie in the data folder .*: a backup of the data would carry"):
        invoke("init", str(tmp_path / "y"), "--data", str(tmp_path / "state2"), "--key-file",
               str(tmp_path / "state2" / "k"), "--yes")  # fmt: skip
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "state2").exists()


# --- which config is found ------------------------------------------------------------------------------------


def test_config_search_order_user_folder_then_system(no_config_anywhere: Path, monkeypatch: pytest.MonkeyPatch):
    user = no_config_anywhere / "user-config" / "facegate" / "config.toml"
    assert config_search() == (Path("config.toml"), user, SYSTEM_CONFIG)
    assert config_path() is None and load_settings() == Settings()
    user.parent.mkdir(parents=True)
    user.write_text("[decision]\nwindow = 7\n", encoding="utf-8")
    assert config_path() == user and load_settings().decision.window == 7
    Path("config.toml").write_text("[decision]\nwindow = 8\n", encoding="utf-8")
    assert load_settings().decision.window == 8  # ./config.toml before the user's
    monkeypatch.setenv(CONFIG_ENV, str(user))
    assert load_settings().decision.window == 7  # $FACEGATE_CONFIG before both
    monkeypatch.setenv(CONFIG_ENV, "gone.toml")
    with pytest.raises(FaceGateError, match=rf"config file not found: gone\.toml \(\${CONFIG_ENV}\)"):
        load_settings()


SITE_COMMANDS = [
    ["enroll", "list"],
    ["admin", "list"],
    ["token", "add", "door"],
    ["events"],
    ["gates"],
    ["keys", "status"],
    ["backup", "site.facegate-backup"],
    ["restore", "site.facegate-backup"],  # refused before the file is looked for
    ["run", "--source", "97"],  # refused before the camera is tried
    ["serve"],
    ["evaluate", "--images", ".", "--write-threshold", "0.001"],  # refused before any pair is embedded
]


@pytest.mark.parametrize("args", SITE_COMMANDS, ids=" ".join)
def test_commands_keeping_site_data_refuse_without_a_config(no_config_anywhere: Path, args: list[str]) -> None:
    with pytest.raises(FaceGateError) as refused:
        invoke(*args)
    message = str(refused.value)
    assert (
        message.startswith("no config file found (no --config or $FACEGATE_CONFIG; looked for ") and "\n" not in message
    )
    assert str(no_config_anywhere / "config.toml") in message and "create one with `facegate init DIR`" in message
    assert list(no_config_anywhere.iterdir()) == []  # no ./data made wherever the command was started


def test_commands_keeping_no_site_data_work_without_a_config(no_config_anywhere: Path) -> None:
    assert "default" in invoke("model", "list")
    assert "Config file. Without it: $FACEGATE_CONFIG" in " ".join(invoke("--help").split())
    assert "facegate init" in " ".join(invoke("--help").split())
    assert list(no_config_anywhere.iterdir()) == []


@pytest.mark.slow  # starts the real `facegate` command in a subprocess
def test_a_new_site_from_the_command_line(no_config_anywhere: Path) -> None:
    """The real command in an empty folder: `run` refuses in one line with exit 2 and makes nothing; `init --yes`,
    then the same folder's commands find ./config.toml."""
    done = subprocess.run(facegate_command("run"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: no config file found") and "facegate init" in done.stderr
    assert list(no_config_anywhere.iterdir()) == []
    made = subprocess.run(facegate_command("init", "--yes"), capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(facegate_command("enroll", "list"), capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.startswith("nobody is enrolled yet"), listed.stderr
    assert stat.S_IMODE((no_config_anywhere / "data" / "facegate.db").stat().st_mode) == 0o600

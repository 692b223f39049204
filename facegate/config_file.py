"""Writing the site's config.toml from a command (the runtime only reads it: gate/config.py): a new one from the
commented template shipped in the package (`facegate init`; its data paths moved to another folder if asked), and
single settings set in place keeping the file's comments and layout (tomlkit): the calibrated threshold, the
encryption key's file. Every edit is validated before it replaces the file, so a failure leaves the file as it
was."""

from __future__ import annotations

import os
import shutil
import tomllib
from importlib.resources import files
from pathlib import Path, PurePosixPath

import tomlkit
from tomlkit.items import Item
from tomlkit.toml_document import TOMLDocument

from gate.config import Settings, settings_from_dict
from gate.errors import FaceGateError

TEMPLATE = "config.toml"  # in this package: a link to the repository's config.toml, so there is one copy
# the template's paths into its data folder ("data/NAME", relative to the config): (section, key, prefix)
DATA_PATHS = (("database", "url", "sqlite:///"), ("database", "journal_path", ""), ("gallery", "index_path", ""))


def template_text() -> str:
    """The commented config shipped with FaceGate: every key at its default, with what it does."""
    return files("facegate").joinpath(TEMPLATE).read_text(encoding="utf-8")


def _parse(path: Path) -> TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as error:
        raise FaceGateError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise FaceGateError(f"cannot read config file {path}: {error.strerror}") from None


def _set(document: TOMLDocument, section: str, key: str, value: object, comment: str | None = None) -> None:
    """`[section] key = value` in the document. A line already there keeps its place and, unless `comment` is
    given, its comment at the same column."""
    if section not in document:
        document[section] = tomlkit.table()
    table = document[section]
    item: Item = tomlkit.item(value)
    old = table.get(key)
    if comment is not None:
        item.comment(comment)
    elif isinstance(old, Item) and old.trivia.comment:
        column = len(old.as_string()) + len(old.trivia.comment_ws)
        item.trivia.comment_ws = " " * max(1, column - len(item.as_string()))
        item.trivia.comment = old.trivia.comment
    table[key] = item


def _validated(document: TOMLDocument, path: Path) -> tuple[str, Settings]:
    text = tomlkit.dumps(document)
    return text, settings_from_dict(tomllib.loads(text), source=str(path), base_dir=path.resolve().parent)


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, tmp)  # the edited file keeps who may read it
        tmp.replace(path)
    except OSError as error:
        raise FaceGateError(f"cannot write config file {path}: {error.strerror}") from None


def write_threshold(path: str | os.PathLike, threshold: float, comment: str) -> Settings:
    """Set `[decision] threshold` in the config file (made if absent)."""
    path = Path(path)
    document = _parse(path)
    _set(document, "decision", "threshold", round(float(threshold), 4), comment)
    text, settings = _validated(document, path)
    _replace(path, text)
    return settings


def key_file_setting(key: Path, config: Path) -> str:
    """How a config names a key file: relative to the config's folder when the key lies in it (the two move
    together), else absolute."""
    key, folder = key.resolve(), config.resolve().parent
    return str(key.relative_to(folder)) if key.is_relative_to(folder) else str(key)


def write_key_file_setting(path: Path, key: Path) -> Settings:
    """Set `[encryption] key_file` in the config file to `key`. A config that already names a key (a file or an
    environment variable) is refused: what is sealed with that key could not be read with another."""
    document = _parse(path)
    _refuse_a_second_key(document, path)
    _set(document, "encryption", "key_file", key_file_setting(key, path))
    text, settings = _validated(document, path)
    _replace(path, text)
    return settings


def _refuse_a_second_key(document: TOMLDocument, path: Path) -> None:
    encryption = document.get("encryption", {})
    for name in ("key_file", "key_env"):
        if encryption.get(name):
            raise FaceGateError(
                f"{path} already names a key (encryption.{name} = {str(encryption[name])!r}): what it sealed cannot be "
                "read with another; --print makes the key without touching the config"
            )


def check_no_second_key(path: Path) -> None:
    """The refusal write_key_file_setting would give, before a key file is made for nothing."""
    _refuse_a_second_key(_parse(path), path)


def data_folder_setting(data: Path, config: Path) -> str:
    """How a config names its data folder: as given when absolute (`/var/lib/facegate`), else like a key file:
    relative to the config's folder when it lies in it, else absolute."""
    return str(data) if data.is_absolute() else key_file_setting(data, config)


def _template_data_paths(document: TOMLDocument) -> list[tuple[str, str, str, str]]:
    """(section, key, prefix, file name) of each path the template keeps in its data folder."""
    return [
        (section, key, prefix, PurePosixPath(str(document[section][key]).removeprefix(prefix)).name)
        for section, key, prefix in DATA_PATHS
    ]


def template_data_files() -> list[str]:
    """The names of the files the template keeps in its data folder: the database, the journal, the index."""
    return [name for *_, name in _template_data_paths(tomlkit.parse(template_text()))]


def from_template(path: Path, key: Path | None = None, data: str | None = None) -> tuple[str, Settings]:
    """The text of a new config file at `path` from the template (with `[encryption] key_file` naming `key`, and
    the database, journal and index in the folder `data` (a config setting: data_folder_setting), if given), and
    its settings: validated, nothing written yet."""
    document = tomlkit.parse(template_text())
    if key is not None:
        _set(document, "encryption", "key_file", key_file_setting(key, path))
    if data is not None:
        for section, name, prefix, file in _template_data_paths(document):
            _set(document, section, name, prefix + str(PurePosixPath(data) / file))
    return _validated(document, path)


def create_config(path: Path, text: str) -> None:
    """Write a new config file (its folder made if absent); an existing one is never overwritten."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise FaceGateError(f"{path} exists: it is never overwritten (edit it, or init another folder)") from None
    except OSError as error:
        raise FaceGateError(f"cannot write config file {path}: {error.strerror}") from None

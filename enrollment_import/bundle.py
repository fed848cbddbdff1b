"""A OneRoster 1.2 CSV bundle: its files (a folder or a zip), its manifest, its rows checked.

The files and columns are those of 1EdTech's OneRoster 1.2 CSV binding
(1.2.1). A bundle is read twice: once here, to its end, checking every file
the manifest marks `bulk` or `delta` and copying it to a temporary folder
(so that what is imported is exactly what was checked, and a bad line
anywhere stops the import before anything is sent), then from those copies.
docs/oneroster.md is the guide.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .importer import (
    MAX_VALUE,
    REJECT_COLUMNS,
    Copying,
    Keys,
    Lines,
    Unusable,
    open_csv,
    records,
    restored,
    utf8_text,
)

MANIFEST = "manifest.csv"
MANIFEST_VERSION = "1.0"
ONEROSTER_VERSION = "1.2"
MODES = ("bulk", "delta", "absent")
ACTIVE = "active"
TOBEDELETED = "tobedeleted"

# The binding's columns of each file the import reads, in the binding's order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "academicSessions.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ),
    "orgs.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "name",
        "type",
        "identifier",
        "parentSourcedId",
    ),
    "courses.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ),
    "classes.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ),
    "users.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
        "userMasterIdentifier",
        "resourceSourcedIds",
        "preferredGivenName",
        "preferredMiddleName",
        "preferredFamilyName",
        "primaryOrgSourcedId",
        "pronouns",
    ),
    "roles.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ),
    "enrollments.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
}
COMMON = ("sourcedId", "status", "dateLastModified")
# The columns a file's header must have: the three every file has, and those
# the import reads. The binding's other columns may be left out.
REQUIRED: dict[str, tuple[str, ...]] = {
    "academicSessions.csv": (*COMMON, "title", "type", "startDate", "endDate"),
    "orgs.csv": COMMON,
    "courses.csv": (*COMMON, "courseCode"),
    "classes.csv": (*COMMON, "title", "courseSourcedId", "classCode", "termSourcedIds"),
    "users.csv": (*COMMON, "givenName", "familyName", "email"),
    "roles.csv": (*COMMON, "userSourcedId", "role"),
    "enrollments.csv": (*COMMON, "classSourcedId", "userSourcedId", "role"),
}
# Extension columns the import reads when a file has them: a class's
# capacity, and the role of a user as OneRoster 1.1 wrote it in users.csv.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "classes.csv": ("metadata.capacity",),
    "users.csv": ("role",),
}
# The order in which the files are checked: roles before users (who is a
# student), courses before classes (a class's code may be its course's).
CHECK_ORDER = (
    "roles.csv",
    "users.csv",
    "orgs.csv",
    "courses.csv",
    "academicSessions.csv",
    "classes.csv",
    "enrollments.csv",
)
# The other files of the binding: never read, reported as skipped.
NOT_KEPT = {
    "demographics.csv": "the service keeps no demographics",
    "userProfiles.csv": "the service keeps no user profiles",
    "categories.csv": "gradebooks are not part of rostering",
    "lineItems.csv": "gradebooks are not part of rostering",
    "lineItemLearningObjectiveIds.csv": "gradebooks are not part of rostering",
    "lineItemScoreScales.csv": "gradebooks are not part of rostering",
    "results.csv": "gradebooks are not part of rostering",
    "resultLearningObjectiveIds.csv": "gradebooks are not part of rostering",
    "resultScoreScales.csv": "gradebooks are not part of rostering",
    "scoreScales.csv": "gradebooks are not part of rostering",
    "resources.csv": "resources are not part of rostering",
    "classResources.csv": "resources are not part of rostering",
    "courseResources.csv": "resources are not part of rostering",
    "userResources.csv": "resources are not part of rostering",
}


def listed(cell: str) -> list[str]:
    """A cell holding a list, as the binding writes one: values apart by commas."""
    return [part.strip() for part in cell.split(",") if part.strip()]


# --- The bundle's files --------------------------------------------------------------------


class Bundle:
    """The files of a bundle, a folder or a zip, by name; opened as binary streams.

    In a zip the files are at its root, or all in one folder (a zip made of
    the folder that holds them).
    """

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        if path.is_dir():
            self.names = sorted(p.name for p in path.iterdir() if p.is_file())
        elif path.is_file():
            self._open_zip(path)
            self.names = sorted(self._members)
        else:
            raise Unusable(f"{path}: no such file or folder", "give the bundle's zip or folder")
        if MANIFEST not in self.names:
            raise Unusable(
                f"{path}: not a OneRoster bundle: no {MANIFEST} in it",
                "give a OneRoster 1.2 CSV bundle (a zip or a folder with manifest.csv)",
            )

    def _open_zip(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise Unusable(
                f"{path}: neither a folder nor a zip file",
                "give a OneRoster 1.2 CSV bundle (a zip or a folder with manifest.csv)",
            ) from None
        except OSError as exc:
            raise Unusable(
                f"{path}: cannot open: {exc.strerror or exc}", "check the path"
            ) from None
        files = [info.filename for info in self._zip.infolist() if not info.is_dir()]
        manifests = [name for name in files if name.rsplit("/", 1)[-1] == MANIFEST]
        # The manifest nearest the root says where the files are.
        folder = min(manifests, key=lambda name: name.count("/"), default="").rpartition("/")[0]
        prefix = f"{folder}/" if folder else ""
        self._members = {
            name[len(prefix) :]: name
            for name in files
            if name.startswith(prefix) and "/" not in name[len(prefix) :]
        }

    def open(self, name: str) -> IO[bytes]:
        try:
            if self._zip is None:
                return (self.path / name).open("rb")
            return self._zip.open(self._members[name])
        except (OSError, RuntimeError, zipfile.BadZipFile) as exc:
            # RuntimeError: a member encrypted with a password.
            raise Unusable(f"{self.path}: {name}: cannot open: {exc}", "check the bundle") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _comma(_line: str) -> str:
    return ","  # the binding's only separator


def _header_names(header: list[str], name: str, required: tuple[str, ...]) -> list[str]:
    """The header's column names, checked: none twice, every required one there."""
    names = [column.strip() for column in header]
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    if duplicated:
        raise Unusable(f"{name}: column(s) named twice: {', '.join(duplicated)}", "fix the bundle")
    missing = [column for column in required if column not in names]
    if missing:
        # The binding spells its names in camelCase, and so must the header.
        folded = {n.lower(): n for n in names}
        hints = [
            f"{folded[column.lower()]} should be {column}"
            for column in missing
            if column.lower() in folded
        ]
        raise Unusable(
            f"{name}: missing column(s) {', '.join(missing)}"
            + (f" ({'; '.join(hints)}: the binding's spelling)" if hints else "")
            + f"; a {name} file needs {','.join(required)}; its header is: "
            + ",".join(header)[:200],
            "fix the bundle",
        )
    return names


# --- The manifest --------------------------------------------------------------------------


@dataclass
class Manifest:
    modes: dict[str, str]  # file name -> bulk, delta or absent, as the manifest gives it

    def mode(self, name: str) -> str:
        return self.modes.get(name, "absent")


def read_manifest(bundle: Bundle) -> Manifest:
    """manifest.csv: its versions checked, each file's mode."""
    with bundle.open(MANIFEST) as stream:
        lines = Lines(utf8_text(io.BufferedReader(stream)), MANIFEST)  # type: ignore[arg-type]
        empty = Unusable(f"{MANIFEST}: the file is empty", "fix the bundle")
        reader, _, header = open_csv(lines, empty, _comma)
        names = _header_names(header, MANIFEST, ("propertyName", "value"))
        at, value_at = names.index("propertyName"), names.index("value")
        properties: dict[str, str] = {}
        for line, values in records(reader, lines):
            cells = values + [""] * (max(at, value_at) + 1 - len(values))
            name, value = cells[at].strip(), cells[value_at].strip()
            if name in properties:
                raise Unusable(f"{MANIFEST}: line {line}: {name} given twice", "fix the bundle")
            properties[name] = value
    for name, expected in (
        ("manifest.version", MANIFEST_VERSION),
        ("oneroster.version", ONEROSTER_VERSION),
    ):
        given = properties.get(name)
        if given != expected:
            said = f"says {name} {given}" if given else f"has no {name}"
            raise Unusable(
                f"{MANIFEST} {said}: the importer reads OneRoster {ONEROSTER_VERSION} bundles "
                f"({name} {expected})",
                "export the roster as OneRoster 1.2 CSV",
            )
    modes: dict[str, str] = {}
    for name, value in properties.items():
        if not name.startswith("file."):
            continue  # source.systemName and the like
        mode = value.lower()
        if mode not in MODES:
            raise Unusable(
                f"{MANIFEST}: {name} is {value!r}, not one of {', '.join(MODES)}",
                "fix the bundle",
            )
        modes[name.removeprefix("file.") + ".csv"] = mode
    return Manifest(modes)


# --- Pass 1: every file read to its end, checked, copied -----------------------------------


@dataclass
class Source:
    """One file of the bundle as checked: its header, its copy, what pass 1 learnt."""

    name: str
    mode: str  # bulk or delta
    copy: Path
    header: list[str]
    index: dict[str, int]  # the columns the import reads -> their place
    kept: list[int]  # the header's columns the rejected file keeps
    restore: bool  # a rejected file read back: cells lose the ' put before a formula
    keys: Keys = field(default_factory=Keys)
    rows: int = 0
    deletions: int = 0  # rows of status tobedeleted

    def fields(self, values: list[str]) -> dict[str, str]:
        cell = restored if self.restore else str
        return {name: cell(values[i]) if i < len(values) else "" for name, i in self.index.items()}

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(line, values) of each row, from the copy."""
        with self.copy.open("rb") as stream:
            lines = Lines(utf8_text(io.BufferedReader(stream)), self.name)  # type: ignore[arg-type]
            reader, _, _ = open_csv(lines, Unusable(f"{self.name}: emptied"), _comma)
            yield from records(reader, lines)


@dataclass
class Roster:
    """What the bundle says across its files, learnt in pass 1."""

    sources: dict[str, Source] = field(default_factory=dict)
    # Users with a role (roles.csv, or users.csv's 1.1 role column) of
    # student, and those with only other roles.
    students: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    course_codes: dict[str, str] = field(default_factory=dict)  # courses.csv: sourcedId -> code
    # For --prune, what each bulk file holds (hashes: a collision keeps a
    # record, never deletes one): sourcedIds; enrollments' (user, class).
    present: dict[str, set[int]] = field(default_factory=dict)

    @property
    def roles_complete(self) -> bool:
        """Whether the bundle says every user's roles (else users are also looked up)."""
        users = self.sources.get("users.csv")
        roles = self.sources.get("roles.csv")
        return (roles is not None and roles.mode == "bulk") or (
            users is not None and "role" in users.index
        )


def _status(fields: dict[str, str]) -> str:
    return fields.get("status", "").strip().lower()


def _learn(roster: Roster, source: Source, fields: dict[str, str], prune: bool) -> None:
    """What one row of pass 1 tells about the others."""
    status = _status(fields)
    sourced_id = fields["sourcedId"].strip()
    active = status != TOBEDELETED
    if source.name == "roles.csv" or (source.name == "users.csv" and "role" in fields):
        user = fields["userSourcedId" if source.name == "roles.csv" else "sourcedId"].strip()
        role = fields["role"].strip()
        if active and user and role:
            if role == "student":
                roster.students.add(user)
                roster.others.discard(user)
            elif user not in roster.students:
                roster.others.add(user)
    if source.name == "courses.csv" and active and fields["courseCode"].strip():
        roster.course_codes[sourced_id] = fields["courseCode"].strip()
    if prune and source.mode == "bulk" and active and sourced_id:
        present = roster.present.setdefault(source.name, set())
        if source.name == "enrollments.csv":
            present.add(hash((fields["userSourcedId"].strip(), fields["classSourcedId"].strip())))
        else:
            present.add(hash(sourced_id))


def check(
    bundle: Bundle,
    manifest: Manifest,
    folder: Path,
    *,
    prune: bool,
) -> Roster:
    """Pass 1: every file the manifest marks bulk or delta, read to its end, checked, copied."""
    roster = Roster()
    for name in CHECK_ORDER:
        mode = manifest.mode(name)
        if mode == "absent":
            continue
        if name not in bundle.names:
            raise Unusable(
                f"{MANIFEST} marks {name} {mode}, and the bundle has no {name}", "fix the bundle"
            )
        source = _check_file(bundle, name, mode, folder / name, roster, prune)
        roster.sources[name] = source
    return roster


def _check_file(
    bundle: Bundle, name: str, mode: str, copy: Path, roster: Roster, prune: bool
) -> Source:
    with bundle.open(name) as stream, copy.open("wb", buffering=0) as spool:
        lines = Lines(utf8_text(io.BufferedReader(Copying(stream, spool))), name)  # type: ignore[arg-type]
        empty = Unusable(
            f"{name}: the file is empty; it starts with the header {','.join(COLUMNS[name])}",
            "fix the bundle",
        )
        reader, _, header = open_csv(lines, empty, _comma)
        names = _header_names(header, name, REQUIRED[name])
        reads = COLUMNS[name] + EXTENSIONS.get(name, ())
        source = Source(
            name=name,
            mode=mode,
            copy=copy,
            header=header,
            index={n: i for i, n in enumerate(names) if n in reads},
            kept=[i for i, n in enumerate(names) if n not in REJECT_COLUMNS],
            restore=all(c in names for c in REJECT_COLUMNS),
        )
        for _, values in records(reader, lines):
            source.rows += 1
            fields = source.fields(values)
            if sourced_id := fields["sourcedId"].strip():
                source.keys.count(sourced_id)
            if _status(fields) == TOBEDELETED:
                source.deletions += 1
            if all(len(value) <= MAX_VALUE for value in fields.values()):
                _learn(roster, source, fields, prune)
        source.keys.counted()
    return source

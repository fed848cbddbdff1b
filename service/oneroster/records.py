"""The binding's record types as the provider serves them: which fields `fields=`
may select, and which `filter=` and `sort=` may name.

Their JSON is built by the database (sql/functions/oneroster.sql,
oneroster_user() and the others), the one place of the mapping, so that a
filter compares exactly what a client reads. The names here are the
properties of the official OpenAPI document's schemas (UserDType,
AcademicSessionDType, ClassDType, CourseDType, EnrollmentDType, OrgDType):
a field the binding defines and the service does not carry may be selected,
filtered or sorted on, and is absent from every record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a filter's value is read: as text, a date or a timestamp."""

    TEXT = "text"
    DATE = "date"  # YYYY-MM-DD
    TIMESTAMP = "timestamp"  # RFC 3339 with Z or an offset


COMMON = {"sourcedId": Kind.TEXT, "status": Kind.TEXT, "dateLastModified": Kind.TIMESTAMP}


@dataclass(frozen=True)
class RecordType:
    """One of the binding's record types."""

    # The property of a single record's answer: {"user": {...}}.
    single: str
    # Every property of the binding's schema, for fields=.
    fields: frozenset[str]
    # The scalar properties (and a GUIDRef's sourcedId, dotted) a filter or a sort may name.
    scalars: dict[str, Kind]


def _record(single: str, scalars: dict[str, Kind], others: set[str]) -> RecordType:
    names = {**COMMON, **scalars}
    top = {name.split(".")[0] for name in names}
    return RecordType(single, frozenset(top | others | {"metadata"}), names)


USER = _record(
    "user",
    {
        "userMasterIdentifier": Kind.TEXT,
        "username": Kind.TEXT,
        "enabledUser": Kind.TEXT,
        "givenName": Kind.TEXT,
        "familyName": Kind.TEXT,
        "middleName": Kind.TEXT,
        "preferredFirstName": Kind.TEXT,
        "preferredMiddleName": Kind.TEXT,
        "preferredLastName": Kind.TEXT,
        "pronouns": Kind.TEXT,
        "primaryOrg.sourcedId": Kind.TEXT,
        "identifier": Kind.TEXT,
        "email": Kind.TEXT,
        "sms": Kind.TEXT,
        "phone": Kind.TEXT,
    },
    {"userIds", "roles", "userProfiles", "agents", "grades", "password", "resources"},
)
ACADEMIC_SESSION = _record(
    "academicSession",
    {
        "title": Kind.TEXT,
        "startDate": Kind.DATE,
        "endDate": Kind.DATE,
        "type": Kind.TEXT,
        "parent.sourcedId": Kind.TEXT,
        "schoolYear": Kind.TEXT,
    },
    {"children"},
)
CLASS = _record(
    "class",
    {
        "title": Kind.TEXT,
        "classCode": Kind.TEXT,
        "classType": Kind.TEXT,
        "location": Kind.TEXT,
        "course.sourcedId": Kind.TEXT,
        "school.sourcedId": Kind.TEXT,
    },
    {"grades", "subjects", "terms", "subjectCodes", "periods", "resources"},
)
COURSE = _record(
    "course",
    {
        "title": Kind.TEXT,
        "schoolYear.sourcedId": Kind.TEXT,
        "courseCode": Kind.TEXT,
        "org.sourcedId": Kind.TEXT,
    },
    {"grades", "subjects", "subjectCodes", "resources"},
)
ENROLLMENT = _record(
    "enrollment",
    {
        "user.sourcedId": Kind.TEXT,
        "class.sourcedId": Kind.TEXT,
        "school.sourcedId": Kind.TEXT,
        "role": Kind.TEXT,
        "primary": Kind.TEXT,
        "beginDate": Kind.DATE,
        "endDate": Kind.DATE,
    },
    set(),
)
ORG = _record(
    "org",
    {"name": Kind.TEXT, "type": Kind.TEXT, "identifier": Kind.TEXT, "parent.sourcedId": Kind.TEXT},
    {"children"},
)

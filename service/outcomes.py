"""What a change did: one vocabulary, from the database to the client.

The database functions name each item's outcome with these slugs
(enroll_run, drop_enrollment, batch_students, batch_courses, batch_terms
in sql/functions/); a batch result carries the slug as `outcome` (the enums of
service/openapi.json are these, a test checks it); a single request answers
with the slug's status; service_enrollments_total counts the enrollment
outcomes by slug; the importer reports rows by slug.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    # An enroll: POST /students/{id}/courses, an enroll item of a batch.
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already-enrolled"
    WAITLISTED = "waitlisted"
    ALREADY_WAITING = "already-waiting"
    COURSE_FULL = "course-full"
    WAITLIST_FULL = "waitlist-full"
    STUDENT_NOT_FOUND = "student-not-found"
    COURSE_NOT_FOUND = "course-not-found"
    # An enroll naming a sourced_id another enrollment has (a create by
    # sourced_id cannot clash on it: it matches).
    SOURCED_ID_TAKEN = "sourced-id-taken"
    # The rules of registration of a course of a term, in the order of the
    # checks (registration_blocker(), sql/functions/registration.sql); a
    # registrar may override them.
    REGISTRATION_HOLD = "registration-hold"
    REGISTRATION_NOT_OPEN = "registration-not-open"
    REGISTRATION_CLOSED = "registration-closed"
    PREREQUISITE_MISSING = "prerequisite-missing"
    TIME_CONFLICT = "time-conflict"
    CREDIT_LIMIT = "credit-limit"
    DROP_DEADLINE_PASSED = "drop-deadline-passed"
    # A drop: DELETE /students/{id}/courses/{id}, a drop item.
    DROPPED = "dropped"
    NOT_ENROLLED = "not-enrolled"
    # A student, course or term item.
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CAPACITY_BELOW_ENROLLMENTS = "capacity-below-enrollments"
    WAITLIST_CAPACITY_BELOW_WAITING = "waitlist-capacity-below-waiting"
    # An item named by sourced_id whose email or code (in its term) another
    # record has; a course item moving a course with students to another term.
    EMAIL_TAKEN = "email-taken"
    CODE_TAKEN = "code-taken"
    COURSE_NOT_EMPTY = "course-not-empty"
    # A course item naming a term that does not exist (the 422 of POST /courses).
    UNKNOWN_TERM = "unknown-term"
    # An item refused for its fields: by the service before the database saw
    # it, or a term item whose dates would be out of order once merged with
    # the stored term's (batch_terms).
    INVALID = "invalid"

    @property
    def status(self) -> int:
        return STATUS[self]


STATUS = {
    Outcome.ENROLLED: 201,
    Outcome.ALREADY_ENROLLED: 200,
    Outcome.WAITLISTED: 202,
    Outcome.ALREADY_WAITING: 202,
    Outcome.COURSE_FULL: 409,
    Outcome.WAITLIST_FULL: 409,
    Outcome.STUDENT_NOT_FOUND: 404,
    Outcome.COURSE_NOT_FOUND: 404,
    Outcome.SOURCED_ID_TAKEN: 409,
    Outcome.REGISTRATION_HOLD: 409,
    Outcome.REGISTRATION_NOT_OPEN: 409,
    Outcome.REGISTRATION_CLOSED: 409,
    Outcome.PREREQUISITE_MISSING: 409,
    Outcome.TIME_CONFLICT: 409,
    Outcome.CREDIT_LIMIT: 409,
    Outcome.DROP_DEADLINE_PASSED: 409,
    Outcome.DROPPED: 204,
    Outcome.NOT_ENROLLED: 404,
    Outcome.CREATED: 201,
    Outcome.UPDATED: 200,
    Outcome.UNCHANGED: 200,
    Outcome.CAPACITY_BELOW_ENROLLMENTS: 409,
    Outcome.WAITLIST_CAPACITY_BELOW_WAITING: 409,
    Outcome.EMAIL_TAKEN: 409,
    Outcome.CODE_TAKEN: 409,
    Outcome.COURSE_NOT_EMPTY: 409,
    Outcome.UNKNOWN_TERM: 422,
    Outcome.INVALID: 422,
}

# The rules a registrar may override ("override": [...]), in the order of
# the checks; a drop can override only the last.
RULES = (
    Outcome.REGISTRATION_HOLD,
    Outcome.REGISTRATION_NOT_OPEN,
    Outcome.REGISTRATION_CLOSED,
    Outcome.PREREQUISITE_MISSING,
    Outcome.TIME_CONFLICT,
    Outcome.CREDIT_LIMIT,
    Outcome.DROP_DEADLINE_PASSED,
)
ENROLL_RULES = RULES[:-1]

# What an enroll can come to: the labels of service_enrollments_total.
ENROLL_OUTCOMES = (
    *ENROLL_RULES,
    Outcome.ENROLLED,
    Outcome.ALREADY_ENROLLED,
    Outcome.WAITLISTED,
    Outcome.ALREADY_WAITING,
    Outcome.COURSE_FULL,
    Outcome.WAITLIST_FULL,
    Outcome.STUDENT_NOT_FOUND,
    Outcome.COURSE_NOT_FOUND,
    Outcome.SOURCED_ID_TAKEN,
)
# What a drop can come to.
DROP_OUTCOMES = (
    Outcome.DROP_DEADLINE_PASSED,
    Outcome.DROPPED,
    Outcome.NOT_ENROLLED,
    Outcome.STUDENT_NOT_FOUND,
    Outcome.COURSE_NOT_FOUND,
)

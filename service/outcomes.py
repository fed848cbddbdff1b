"""What a change did: one vocabulary, from the database to the client.

The database functions name each item's outcome with these slugs
(enroll_run, drop_enrollment, batch_students, batch_courses in
sql/functions/); a batch result carries the slug as `outcome` (the enums of
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
    # A drop: DELETE /students/{id}/courses/{id}, a drop item.
    DROPPED = "dropped"
    NOT_ENROLLED = "not-enrolled"
    # A student or course item.
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CAPACITY_BELOW_ENROLLMENTS = "capacity-below-enrollments"
    WAITLIST_CAPACITY_BELOW_WAITING = "waitlist-capacity-below-waiting"
    # A course item naming a term that does not exist (the 422 of POST /courses).
    UNKNOWN_TERM = "unknown-term"
    # An item the service refused before the database saw it.
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
    Outcome.DROPPED: 204,
    Outcome.NOT_ENROLLED: 404,
    Outcome.CREATED: 201,
    Outcome.UPDATED: 200,
    Outcome.UNCHANGED: 200,
    Outcome.CAPACITY_BELOW_ENROLLMENTS: 409,
    Outcome.WAITLIST_CAPACITY_BELOW_WAITING: 409,
    Outcome.UNKNOWN_TERM: 422,
    Outcome.INVALID: 422,
}

# What an enroll can come to: the labels of service_enrollments_total.
ENROLL_OUTCOMES = (
    Outcome.ENROLLED,
    Outcome.ALREADY_ENROLLED,
    Outcome.WAITLISTED,
    Outcome.ALREADY_WAITING,
    Outcome.COURSE_FULL,
    Outcome.WAITLIST_FULL,
    Outcome.STUDENT_NOT_FOUND,
    Outcome.COURSE_NOT_FOUND,
)
# What a drop can come to.
DROP_OUTCOMES = (
    Outcome.DROPPED,
    Outcome.NOT_ENROLLED,
    Outcome.STUDENT_NOT_FOUND,
    Outcome.COURSE_NOT_FOUND,
)

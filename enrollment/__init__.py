"""Enrollment: add, list, show, remove and re-embed people; one transaction per person, index in step."""

from enrollment.people import (
    EnrollmentRefused,
    EnrollResult,
    PersonDetail,
    PersonSummary,
    TemplateInfo,
    add_person,
    list_people,
    remove_person,
    show_person,
)
from enrollment.photos import PhotoOutcome
from enrollment.reembed import ReembedResult, reembed_all

__all__ = [
    "EnrollResult",
    "EnrollmentRefused",
    "PersonDetail",
    "PersonSummary",
    "PhotoOutcome",
    "ReembedResult",
    "TemplateInfo",
    "add_person",
    "list_people",
    "reembed_all",
    "remove_person",
    "show_person",
]

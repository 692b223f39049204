"""The one exception type for errors a user can cause (bad file, bad config, missing camera...), and its kinds that
a caller may answer differently (the API's statuses)."""


class FaceGateError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits non-zero."""


class NotFound(FaceGateError):
    """What was asked for (a person, an event) does not exist."""

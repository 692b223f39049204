"""The one exception type for errors a user can cause (bad file, bad config, missing camera...)."""


class FaceGateError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits non-zero."""

"""The one exception type for errors a user can cause (bad file, bad flag, bad model)."""


class TinctError(Exception):
    """A user-facing error whose message is one line saying what and why."""

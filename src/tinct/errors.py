"""The exception types for errors a user can cause (bad file, bad flag, bad model); each message is one line.

``exit_code`` is what the ``tinct`` command exits with: 2 for a usage error (an option, a combination, a
missing input, an unusable model), 1 when an input itself failed (unreadable, too large, not writable).
"""


class TinctError(Exception):
    """A user-facing error whose message is one line saying what and why."""
    exit_code = 2


class InputFailed(TinctError):
    """An input could not be colorized (its file, its size, its output): the run's other inputs are unaffected."""
    exit_code = 1


class OptionError(TinctError):
    """A file or value given with an option is unusable (a hints file): the command line is wrong (exit 2), even
    when it shows only while an input is colorized."""

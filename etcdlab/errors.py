"""The one exception type a user sees as a message instead of a traceback."""


class LabError(Exception):
    """An error the user can act on: bad settings, no Docker, a name or subnet in use.

    Tasks print its message in one line and exit non-zero.
    """

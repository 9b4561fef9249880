"""The one exception type a user sees as a message instead of a traceback."""


class LabError(Exception):
    """An error the user can act on: bad settings, no Docker, a name or subnet in use.

    Tasks print its message in one line and exit non-zero.
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP: heal, keep what was measured, start nothing new."""

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

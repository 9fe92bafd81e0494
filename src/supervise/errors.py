"""The one base class for failures a user can act on (printed as one line, non-zero exit)."""


class SuperviseError(Exception):
    """A failure with a message meant for the person running the command."""

"""The one base class for failures a user can act on (printed as one line, non-zero exit)."""


class SuperviseError(Exception):
    """A failure with a message meant for the person running the command."""


class DatabaseFault(SuperviseError):
    """The database cannot be read or written (read-only, corrupt, disk full): the server's
    fault, never a county's. Whatever was being ingested stays where it was."""

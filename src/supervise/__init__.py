"""supervise: supervision, scoring and bulletins for county specialty industry clusters."""

__version__ = "0.1.0"

"""The one exception infoprobe raises for problems a user can fix."""

from __future__ import annotations

__all__ = ["InfoprobeError"]


class InfoprobeError(ValueError):
    """A problem with the caller's input, files or options.

    The message says what was expected, what was got and how to fix it. It is a
    ``ValueError`` so that code catching bad values keeps working.
    """

    def with_context(self, context: str) -> InfoprobeError:
        """A copy of this error whose message is prefixed with ``context``."""
        new = type(self)(f"{context}: {self}")
        new.__cause__ = self
        return new

"""The one exception infoprobe raises for problems a user can fix."""

from __future__ import annotations

__all__ = ["InfoprobeError"]


class InfoprobeError(ValueError):
    """A problem with the caller's input, files or options.

    The message says what was expected, what was got and how to fix it, in terms of the
    library's parameters; ``parameter`` names the parameter at fault (if one is), so that the
    command line can speak of its flag instead. It is a ``ValueError`` so that code catching
    bad values keeps working.
    """

    def __init__(self, message: str = "", *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter

    def with_context(self, context: str) -> InfoprobeError:
        """A copy of this error whose message is prefixed with ``context``."""
        new = type(self)(f"{context}: {self}", parameter=self.parameter)
        new.__cause__ = self
        return new

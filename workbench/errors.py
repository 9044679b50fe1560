"""Domain errors (Python exceptions). "Exceptions" in the product means ExceptionItem rows."""


class WorkbenchError(Exception):
    """Base: a request that cannot be done as asked; the message is shown to the user."""


class InvalidTransition(WorkbenchError):
    pass


class StaleUpdate(WorkbenchError):
    """Someone else changed the item first; reload and try again."""


class InvalidCorrection(WorkbenchError):
    pass


class InvalidComment(WorkbenchError):
    """A comment that cannot be posted as written (empty, too long, a NUL byte, not the author's)."""


class InvalidCalendar(WorkbenchError):
    """A business calendar, added day or close offset that cannot be used (the message says why)."""

"""The one error type for mistakes a user can fix (bad config, missing data, wrong shapes)."""


class GanforgeError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it.

    The CLI prints it without a traceback and exits with status 2.
    """

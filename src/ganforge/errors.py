"""The one error type for mistakes a user can fix (bad config, missing data, wrong shapes)."""


class GanforgeError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it.

    The CLI prints it without a traceback and exits with status 2.
    """


def unknown_name(what: str, name: str, choices: list[str], fix: str) -> GanforgeError:
    """The error for a name missing from a registry: the valid names, the nearest, the fix."""
    import difflib

    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return GanforgeError(
        f"Unknown {what} '{name}'; valid choices: {', '.join(choices)}.{hint} {fix}"
    )

"""Errors a user can fix: reported as one line naming the fix, never as a traceback."""


class UserError(Exception):
    """Bad input or configuration; the message says what to change."""

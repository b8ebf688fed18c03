"""The base of every error that is the user's to fix (bad input, bad file, missing backend).

The CLIs print these as one clear message without a traceback; anything else is a bug and keeps its traceback.
"""


class VivimError(Exception):
    """An error with a message meant for the user: what happened, which file, what to do."""

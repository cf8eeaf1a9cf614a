"""Errors that reach the user as one line."""


class InputError(ValueError):
    """Bad input: the message names the file and the fix, and is printed without traceback."""


class ModelBundleError(RuntimeError):
    """A model bundle is missing, corrupted (sha256 mismatch) or does not fit the pipeline."""

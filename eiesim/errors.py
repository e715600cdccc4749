"""Typed exceptions of eiesim.

Library code raises only subclasses of :class:`EieError`; the command line
(`eiesim.cli`) turns them into a one-line message and exit code 2.
"""

__all__ = [
    "EieError",
    "EieConfigError",
    "EieFormatError",
    "EieInputError",
]


class EieError(Exception):
    """Base class of every error eiesim raises on purpose."""


class EieConfigError(EieError, ValueError):
    """A hardware configuration value is missing, of the wrong type or out of range.

    The message names the offending field.
    """


class EieFormatError(EieError, ValueError):
    """A compressed-weight file or in-memory layout breaks a format rule.

    The message names the file (when there is one), the field and the rule.

    Parameters
    ----------
    *args
        As for :class:`Exception` (the first is the message).
    code : str, optional
        Stable code of the broken rule (for example ``"PTR-START-NONZERO"``;
        the rule tables are in the project's ``docs/FORMAT.md``: format rules,
        and the input errors ``ARGUMENT``, ``IO-ERROR``, ``SIZE-LIMIT``, ...).
        Every error eiesim raises carries one (a test checks every raise
        site); None only for errors constructed elsewhere. Keyword-only; it
        does not change the message.

    Attributes
    ----------
    code : str or None
    """

    def __init__(self, *args, code=None):
        super().__init__(*args)
        self.code = code


class EieInputError(EieError, ValueError):
    """An input to the simulator (activation vector, layer/config pairing) is malformed.

    The message names the array and the problem (length, dtype, non-finite value).
    """

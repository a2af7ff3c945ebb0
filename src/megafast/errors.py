"""The one exception tree of megafast.

Every error megafast raises on purpose is a :class:`MegaError`. Errors that come from the
MEGA API carry the API's number in ``.code`` (``-1`` to ``-30``; other numbers and text
answers are kept as they came). Errors that are also "bad input" are :class:`ValueError`
too, so code written for mega.py that catches ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "MegaError",
    "RequestError",
    "UnexpectedAnswerError",
    "TreeError",
    "ValidationError",
    "IntegrityError",
    "NotFoundError",
    "LoginError",
    "TwoFactorRequiredError",
    "OverQuotaError",
    "AccessDeniedError",
    "ExpiredError",
    "RetryExhaustedError",
    "ServerUnreachableError",
    "HashcashError",
    "LinkError",
    "TransferError",
    "SessionError",
    "IncompleteLinkError",
    "PasswordRequiredError",
    "WrongPasswordError",
    "WrongKeyError",
    "NodeNotFoundError",
    "DestinationError",
    "SourceNotFoundError",
    "ERROR_CODES",
    "error_for_code",
]

# code -> (name, message)
ERROR_CODES: dict[int, tuple[str, str]] = {
    -1: ("EINTERNAL", "internal error"),
    -2: ("EARGS", "bad arguments"),
    -3: ("EAGAIN", "temporary congestion, try again"),
    -4: ("ERATELIMIT", "rate limit exceeded (or upload failed: restart it)"),
    -5: ("EFAILED", "failed permanently"),
    -6: ("ETOOMANY", "too many concurrent IP addresses or requests"),
    -7: ("ERANGE", "resource access out of range"),
    -8: ("EEXPIRED", "resource expired"),
    -9: ("ENOENT", "not found (or wrong email or password)"),
    -10: ("ECIRCULAR", "circular linkage"),
    -11: ("EACCESS", "access denied"),
    -12: ("EEXIST", "already exists"),
    -13: ("EINCOMPLETE", "incomplete (for example a link without a key)"),
    -14: ("EKEY", "cryptographic error"),
    -15: ("ESID", "bad session id"),
    -16: ("EBLOCKED", "resource administratively blocked"),
    -17: ("EOVERQUOTA", "over quota"),
    -18: ("ETEMPUNAVAIL", "resource temporarily unavailable"),
    -19: ("ETOOMANYCONNECTIONS", "too many connections on this resource"),
    -20: ("EWRITE", "write failed"),
    -21: ("EREAD", "read failed"),
    -22: ("EAPPKEY", "invalid application key"),
    -23: ("ESSL", "SSL verification failed"),
    -24: ("EGOINGOVERQUOTA", "not enough quota"),
    -25: ("EROLLEDBACK", "request rolled back"),
    -26: ("EMFAREQUIRED", "two-factor authentication code required"),
    -27: ("EMASTERONLY", "only the master account of a business can do this"),
    -28: ("EBUSINESSPASTDUE", "business account past due"),
    -29: ("EPAYWALL", "over-storage paywall: access restricted"),
    -30: ("ESUBUSERKEYMISSING", "business sub-user key missing"),
}


class MegaError(Exception):
    """Base class of every error megafast raises on purpose."""


class ValidationError(MegaError, ValueError):
    """Bad input from the caller (a malformed link, a bad path, a wrong argument)."""


class LinkError(ValidationError):
    """A public link that cannot be parsed, or that has no key."""


class IntegrityError(MegaError, ValueError):
    """Content or metadata failed its cryptographic check (MAC mismatch, wrong key)."""


class TransferError(MegaError):
    """A transfer failed for good (after its retry budget was spent)."""


class HashcashError(MegaError):
    """The server's hashcash challenge could not be parsed or solved in time."""


class RequestError(MegaError):
    """An error number (or unexpected answer) from the MEGA API.

    ``code`` is the API's number (an ``int``; an unknown or text answer is kept as it came),
    ``name`` its symbolic name (``ENOENT`` ...) and ``message`` a human description.
    """

    def __init__(self, code: int | str | None, message: str | None = None) -> None:
        self.code = code
        if isinstance(code, int) and code in ERROR_CODES:
            self.name, default = ERROR_CODES[code]
        else:
            self.name, default = "EUNKNOWN", f"unexpected answer from the server: {code!r}"
        self.message = message or default
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        return f"{self.name} ({self.code}): {self.message}"


class UnexpectedAnswerError(RequestError):
    """The server answered with something of the wrong shape (a missing field, a list where
    a dict belongs...). ``code`` is ``None``: there is no API error number."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)
        self.name = "EUNEXPECTED"

    def __str__(self) -> str:
        return f"unexpected answer from the server: {self.message}"


class TreeError(UnexpectedAnswerError):
    """A listing whose nodes do not form a tree: a folder inside its own sub-folder (a cycle)
    or nodes whose parent is not in the listing. ``handles`` names the nodes concerned."""

    def __init__(self, message: str, handles: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.handles = handles


class NotFoundError(RequestError):
    """-9: the node, link or user does not exist."""


class LoginError(RequestError):
    """The email or password is wrong (MEGA answers -9 for both)."""


class TwoFactorRequiredError(RequestError):
    """-26: the account has two-factor authentication; a code is needed."""


class AccessDeniedError(RequestError):
    """-11: access denied."""


class ExpiredError(RequestError):
    """-8: the resource (for example an upload URL) expired."""


class OverQuotaError(RequestError):
    """-17 or HTTP 509: over storage or transfer quota. ``time_left`` is seconds to wait, if known."""

    def __init__(
        self, code: int | str = -17, message: str | None = None, time_left: float | None = None
    ) -> None:
        super().__init__(code, message)
        self.time_left = time_left

    def __str__(self) -> str:
        base = super().__str__()
        if self.time_left is not None:
            return f"{base}; retry in {self.time_left:g} s"
        return base


class RetryExhaustedError(RequestError, TransferError):
    """A request kept failing with a temporary error until its retry budget ran out.

    ``code`` is the API's number when the last answer was one (``-3``), else a short text
    (``"HTTP 503"``)."""

    def __str__(self) -> str:
        if isinstance(self.code, int):
            return super().__str__()
        return self.message


class ServerUnreachableError(RetryExhaustedError):
    """The API server cannot be reached at all (connection refused, unknown host name) after
    a few tries. ``host`` is ``scheme://host:port`` (never a URL with a session id)."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__("EUNREACHABLE", message)
        self.name = "EUNREACHABLE"
        self.host = host


class SessionError(RequestError):
    """-15: the session id is not (or no longer) valid; log in again."""


class IncompleteLinkError(LinkError):
    """A public link without its key (MEGA's -13, EINCOMPLETE)."""

    code = -13


class PasswordRequiredError(LinkError):
    """A password-protected link (``#P!``) was given without its password."""


class WrongPasswordError(LinkError):
    """The password does not open a password-protected link (its HMAC does not match: a wrong
    password, or a damaged link). Neither the password nor the derived key is in the message."""

    code = -14


class WrongKeyError(IntegrityError):
    """A key does not fit: the attributes of a node or link do not decrypt with it."""


class NodeNotFoundError(NotFoundError, ValidationError):
    """A file or folder named by the caller (path, handle or node) does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(-9, message)


class DestinationError(ValidationError):
    """A local destination that cannot be written (not a directory, no permission, ...)."""


class SourceNotFoundError(ValidationError, FileNotFoundError):
    """A local file or folder to upload does not exist or is not a regular file."""


_SUBCLASSES: dict[int, type[RequestError]] = {
    -8: ExpiredError,
    -9: NotFoundError,
    -11: AccessDeniedError,
    -15: SessionError,
    -17: OverQuotaError,
    -26: TwoFactorRequiredError,
}


def error_for_code(code: int | str, message: str | None = None) -> RequestError:
    """Return the most specific :class:`RequestError` for an API error number."""
    cls = _SUBCLASSES.get(code, RequestError) if isinstance(code, int) else RequestError
    return cls(code, message)

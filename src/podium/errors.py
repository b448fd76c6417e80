"""Podium's exception tree. Domain code raises these; only the web layer maps them to HTTP.

PodiumError
├── InvalidInput          the caller sent something malformed (400)
│   ├── InvalidOffer      an SDP offer Podium cannot answer (400)
│   └── OpusError         libopus refused a speaker's packet or a setting (media/libopus.py)
├── Unauthenticated       no credentials, or credentials that do not verify (401)
├── Forbidden             valid credentials without the right for this action (403)
├── NotFound              no such space, part or session (404)
├── Conflict              the action does not fit the current state (409)
├── TooLarge              a body past its size limit (413)
├── RateLimited           a per-address or per-account limit was met (429, Retry-After)
└── AtCapacity            the node is at a budget of its own, such as its stages (503, Retry-After)
"""

from __future__ import annotations


class PodiumError(Exception):
    """Base of every error Podium raises on purpose; the message is shown to people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PodiumError):
    pass


class InvalidOffer(InvalidInput):
    pass


class Unauthenticated(PodiumError):
    pass


class Forbidden(PodiumError):
    pass


class NotFound(PodiumError):
    pass


class Conflict(PodiumError):
    pass


class TooLarge(PodiumError):
    pass


class RateLimited(PodiumError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class AtCapacity(PodiumError):
    """The node is at one of its node-wide budgets (the stages it can keep in real time): nothing
    is wrong with the request, and the same one may go through once something ends."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)

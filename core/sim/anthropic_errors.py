"""Anthropic-shaped errors: `{"type": "error", "error": {"type", "message"}}`.

The Anthropic routes (`/v1/messages...`) raise `AnthropicError`; errors raised by shared code
(auth, faults, routing, crashes) are translated by `for_path` from the OpenAI `SimError`
into Anthropic's shape by HTTP status, so the `anthropic` SDK sees the error classes it knows
(`BadRequestError`, `AuthenticationError`, `RateLimitError`, `InternalServerError`, ...).
"""

from __future__ import annotations

from typing import Final

from batchdash.core.sim.errors import JsonDict, SimError

ANTHROPIC_PREFIX: Final = "/v1/messages"
TYPE_BY_STATUS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def is_anthropic(path: str) -> bool:
    """Whether `path` is served by the Anthropic side of the simulator."""
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def error_envelope(error_type: str, message: str) -> JsonDict:
    """Anthropic's error body (also the `error` of an errored batch result)."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


class AnthropicError(SimError):
    """An HTTP error answer of the Anthropic routes."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        """`error_type` defaults to Anthropic's type for `status`."""
        kind = error_type or TYPE_BY_STATUS.get(status, "api_error")
        super().__init__(status, message, type_=kind)

    def body(self) -> JsonDict:
        """The JSON body to send."""
        return error_envelope(self.type, self.message)

    @classmethod
    def invalid(cls, message: str, param: str | None = None, code: str | None = None) -> SimError:
        """400 invalid_request_error (`param` and `code` are OpenAI-only and ignored)."""
        return cls(400, message)

    @classmethod
    def not_found(cls, message: str, param: str | None = None) -> SimError:
        """404 not_found_error."""
        return cls(404, message)


def for_path(path: str, error: SimError) -> SimError:
    """`error` as the route at `path` words it: unchanged, or in Anthropic's shape."""
    if not is_anthropic(path) or isinstance(error, AnthropicError):
        return error
    if error.status == 401:
        return AnthropicError(401, "invalid x-api-key (simulated)")
    if error.status == 503:  # Anthropic's overload status is 529
        return AnthropicError(529, "Overloaded (simulated)")
    return AnthropicError(error.status, error.message)

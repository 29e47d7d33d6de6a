"""OpenAI-shaped errors raised anywhere in the simulator and rendered by the HTTP layer.

Every error body is `{"error": {"message", "type", "param", "code"}}`, the shape the openai
SDK turns into `openai.APIStatusError` subclasses (`NotFoundError`, `RateLimitError`, ...).
"""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> JsonDict:
    """Build an OpenAI error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class SimError(Exception):
    """An HTTP error answer: status code plus the OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        """Store the fields; `message` also becomes the exception text."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> JsonDict:
        """The JSON body to send."""
        return error_body(self.message, self.type, self.param, self.code)

    @classmethod
    def invalid(cls, message: str, param: str | None = None, code: str | None = None) -> SimError:
        """400 invalid_request_error."""
        return cls(400, message, param=param, code=code)

    @classmethod
    def missing(cls, param: str) -> SimError:
        """400 for an absent required parameter, worded like OpenAI."""
        return cls.invalid(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )

    @classmethod
    def not_found(cls, message: str, param: str | None = None) -> SimError:
        """404 invalid_request_error."""
        return cls(404, message, param=param)

    @classmethod
    def invalid_api_key(cls) -> SimError:
        """401 for a missing or wrong key (OpenAI's wording, without echoing the key)."""
        return cls(
            401,
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys. (simulated)",
            code="invalid_api_key",
        )

    @classmethod
    def rate_limited(cls) -> SimError:
        """429 as OpenAI sends it for request-rate limits."""
        return cls(
            429,
            "Rate limit reached for requests (simulated). Please try again later.",
            type_="requests",
            code="rate_limit_exceeded",
        )

    @classmethod
    def server_error(cls) -> SimError:
        """500 with OpenAI's generic server-error wording."""
        return cls(
            500,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            type_="server_error",
        )

    @classmethod
    def overloaded(cls) -> SimError:
        """503 with OpenAI's overload wording."""
        return cls(
            503,
            "The engine is currently overloaded, please try again later. (simulated)",
            type_="server_error",
        )

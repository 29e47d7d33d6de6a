"""Where a provider call goes: a named endpoint of the config file, or the SDK's default.

Every call on a batch or a local job resolves its endpoint here, from the endpoint NAME
stored on it (`batches.endpoint_name`, `jobs.endpoint_name`), at call time: the key is
read from the named variable then and is never stored. Without a name, each provider's
SDK variables are the unnamed default (OPENAI_BASE_URL / OPENAI_API_KEY, or the config
file's `[openai]` table; ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY).

`batches.base_url` and `endpoint_name`: the base_url column records where a batch was
sent when it was submitted (shown in detail, and what unnamed batches keep using, so
changing OPENAI_BASE_URL never redirects a running batch). A named batch follows its name:
the config file's current `base_url` for that name wins, so an endpoint that moved is
followed by every batch sent through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batchdash.core.batch_input import detect_provider
from batchdash.core.config import (
    ConfigError,
    MissingKeyError,
    file_settings,
    openai_endpoint,
)

if TYPE_CHECKING:
    from batchdash.core.models import Batch

#: The SDK defaults of providers other than OpenAI (whose default is `config.openai_endpoint`).
_ANTHROPIC_URL_ENV = "ANTHROPIC_BASE_URL"
_ANTHROPIC_KEY_ENV = "ANTHROPIC_API_KEY"
_ANTHROPIC_URL = "https://api.anthropic.com"
_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": _ANTHROPIC_KEY_ENV}


class UnknownEndpointError(ConfigError):
    """A name that no `[endpoints.NAME]` table of the config file defines."""


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint: its provider, URL and the variable holding its key."""

    name: str | None
    provider: str
    base_url: str
    key_env: str

    @property
    def label(self) -> str:
        """How messages name it: `endpoint NAME`, or the provider's default."""
        return f"endpoint {self.name!r}" if self.name else f"the default {self.provider} endpoint"

    def key(self) -> str:
        """The API key from its variable; MissingKeyError (naming the variable) when unset."""
        key = os.environ.get(self.key_env, "")
        if not key:
            hint = f" for {self.label}" if self.name else ""
            raise MissingKeyError(f"no API key: set {self.key_env}{hint}")
        return key


def endpoint_names() -> list[str]:
    """The names the config file defines, sorted."""
    return sorted(file_settings().endpoints)


def named(name: str) -> Endpoint:
    """The endpoint `[endpoints.NAME]` defines; UnknownEndpointError listing the known ones."""
    settings = file_settings().endpoints.get(name)
    if settings is None:
        known = ", ".join(endpoint_names()) or "none: add [endpoints.NAME] to the config file"
        raise UnknownEndpointError(f"unknown endpoint {name!r} (known: {known})")
    return Endpoint(
        name=name,
        provider=settings.provider,
        base_url=settings.base_url or _provider_url(settings.provider),
        key_env=settings.api_key_env or _DEFAULT_KEY_ENV[settings.provider],
    )


def default_endpoint(provider: str) -> Endpoint:
    """The unnamed endpoint of a provider: its SDK's variables (and `[openai]` for OpenAI)."""
    if provider == "openai":
        base_url, _, key_env = openai_endpoint()
        return Endpoint(None, provider, base_url, key_env)
    base_url = os.environ.get(_ANTHROPIC_URL_ENV) or _ANTHROPIC_URL
    return Endpoint(None, provider, base_url, _DEFAULT_KEY_ENV.get(provider, _ANTHROPIC_KEY_ENV))


def _provider_url(provider: str) -> str:
    """A named endpoint without base_url uses the provider's public API (not the SDK's
    environment override, which belongs to the unnamed default)."""
    return "https://api.openai.com/v1" if provider == "openai" else _ANTHROPIC_URL


def resolve(name: str | None, provider: str) -> Endpoint:
    """The endpoint called `name` (which must be of `provider`), or the provider's default.

    For a stored name, the error of a name gone from the config file is raised by the
    caller's `for_stored`; this one is for names given on the command line.
    """
    if name is None:
        return default_endpoint(provider)
    endpoint = named(name)
    if endpoint.provider != provider:
        raise ConfigError(
            f"endpoint {name!r} is an {endpoint.provider} endpoint, not {provider} "
            f"(its [endpoints.{name}] provider)"
        )
    return endpoint


def for_stored(what: str, name: str | None, provider: str, base_url: str | None) -> Endpoint:
    """The endpoint of a stored batch or job (`what`: "batch 3", "job 7").

    A name gone from the config file is a one-line error naming it; without a name, the
    default endpoint's key at the URL recorded on submit (`base_url`), if any.
    """
    if name is None:
        default = default_endpoint(provider)
        if base_url:
            return Endpoint(None, provider, base_url, default.key_env)
        return default
    try:
        return resolve(name, provider)
    except UnknownEndpointError:
        raise UnknownEndpointError(
            f"{what} was sent through endpoint {name!r}, which the config file no longer "
            f"defines (add [endpoints.{name}] back)"
        ) from None


def batch_endpoint(batch: Batch) -> Endpoint:
    """Where every call on this batch goes (poll, cancel, results, resubmit, reconcile)."""
    return for_stored(f"batch {batch.id}", batch.endpoint_name, batch.provider, batch.base_url)


def choose_provider(path: Path, provider: str | None, endpoint_name: str | None) -> str:
    """The provider a batch file goes to: `--provider`, else the named endpoint's, else
    the one whose line format the file uses (`batch_input.detect_provider`).

    A choice that contradicts another (an Anthropic endpoint for OpenAI lines, `--provider`
    against the endpoint's) is a one-line ConfigError rather than a batch of refused lines.
    """
    endpoint = named(endpoint_name) if endpoint_name else None
    if provider and endpoint and endpoint.provider != provider:
        raise ConfigError(
            f"--endpoint {endpoint_name} is an {endpoint.provider} endpoint, "
            f"not --provider {provider}"
        )
    if provider:
        return provider
    detected = detect_provider(path)
    if endpoint and endpoint.provider != detected:
        raise ConfigError(
            f"{path} holds {detected} request lines but --endpoint {endpoint_name} is an "
            f"{endpoint.provider} endpoint (--provider {endpoint.provider} to send them anyway)"
        )
    return detected

"""The request layer of :class:`~litecoord.backends.http.HttpCoordinator`: failover, retries, bounds, errors.

:class:`HttpClient` sends one call to the first of its servers that answers,
resending only what is safe to resend (the rules are in
:mod:`litecoord.backends.http`), within the caller's bound
(:mod:`litecoord.backends.bounds`), and turns the answer into parsed JSON or
the server's error class. The coordinator's methods are built on its
``_call``; kept apart from them so that each file holds one concern.
"""

from __future__ import annotations

import errno
import http.client
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from .. import validation as check
from ..errors import CoordinatorUnreachableError, LitecoordError, ValidationError, error_from_dict
from . import bounds
from .http_transport import HttpTransport, RequestNotSentError, Transport, split_urls

__all__ = ["HttpClient"]


class _Servers:
    """The servers of one coordinator and its :meth:`~HttpCoordinator.bind` copies.

    ``current`` is the index of the server that last answered: the one tried
    first. A plain int, assigned whole, so threads can share it without a lock
    (the worst race tries a dead server once more).
    """

    def __init__(self, urls: tuple[str, ...], transports: list[Transport]) -> None:
        self.urls = urls
        self.prefixes = tuple(urlsplit(url).path.rstrip("/") for url in urls)
        self.transports = transports
        self.current = 0


_NOT_SENT_ERRNOS = {errno.ECONNREFUSED}



class HttpClient:
    """The servers, headers and retry budget under one :class:`~litecoord.backends.http.HttpCoordinator`.

    Its :meth:`~litecoord.backends.http.HttpCoordinator.bind` copies share
    ``_servers``, so they share the memory of which server answers.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: Transport | Sequence[Transport] | None = None,
    ) -> None:
        urls = split_urls(base_url)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError("retries", "must be a non-negative integer")
        check.seconds("timeout", timeout)
        self.token = token
        self.timeout = float(timeout)
        self.retries = retries
        if transport is None:
            transports: list[Transport] = [HttpTransport(url, timeout=self.timeout) for url in urls]
        elif isinstance(transport, Sequence):
            transports = list(transport)
            if len(transports) != len(urls):
                raise ValidationError(
                    "transport", f"must be one transport per URL ({len(urls)}), got {len(transports)}"
                )
        else:
            if len(urls) != 1:
                raise ValidationError("transport", f"must be one transport per URL ({len(urls)}), got 1")
            transports = [transport]
        self._servers = _Servers(urls, transports)
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "litecoord-http",
        }
        if token:
            # The server's rule: printable ASCII (a header value is bytes; http.client refuses the rest).
            self._headers["Authorization"] = f"Bearer {check.token(token)}"

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every server's base URL, in the order given."""
        return self._servers.urls

    @property
    def base_url(self) -> str:
        """The base URL of the server that last answered (the first one until then)."""
        return self._servers.urls[self._servers.current]

    @property
    def transport(self) -> Transport:
        """The transport to the server that last answered."""
        return self._servers.transports[self._servers.current]

    @transport.setter
    def transport(self, value: Transport) -> None:
        self._servers.transports[self._servers.current] = value

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> tuple[int, Any]:
        """Send one request; return ``(status, parsed JSON)``; raise the server's error for other statuses."""
        target = path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        servers = self._servers
        count = len(servers.urls)
        first = servers.current
        # Each server gets `retries` resends; the back-off comes after every
        # server failed once, so a dead server is skipped at once.
        failures = 0
        error: BaseException | None = None
        while True:
            index = (first + failures) % count
            left = bounds.time_left()
            if left is not None and left <= 0:
                # The caller's bound (the runner: what is left of a lease) ran out: unreachable, not a success.
                raise self._unreachable(error or TimeoutError("no answer within the call's bound"), index) from error
            # With other servers left to try, one that hangs may take only half of what is left.
            share = None if left is None or count == 1 else left / 2
            try:
                with bounds.call_bound(share):
                    status, raw = servers.transports[index].request(
                        method, servers.prefixes[index] + target, self._headers, payload
                    )
                servers.current = index
                break
            except RequestNotSentError as exc:
                error = exc
            except (OSError, http.client.HTTPException) as exc:
                error = exc
                if not idempotent and getattr(exc, "errno", None) not in _NOT_SENT_ERRNOS:
                    raise self._unreachable(error, index) from error
            failures += 1
            if failures > self.retries * count + count - 1:
                raise self._unreachable(error, index) from error
            if failures % count == 0 and not isinstance(error, RequestNotSentError):
                pause = min(1.0, 0.05 * 2 ** (failures // count))  # back off from struggling servers
                time.sleep(bounds.time_left(pause) or 0.0)
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise CoordinatorUnreachableError(
                f"{method} {servers.urls[index]}{path} answered {status} with a body that is not JSON: {raw[:200]!r}",
                status=status,
            ) from None
        return status, data

    def _unreachable(self, exc: BaseException, index: int) -> CoordinatorUnreachableError:
        urls = self._servers.urls
        where = urls[0] if len(urls) == 1 else f"any of {', '.join(urls)} (last tried {urls[index]})"
        return CoordinatorUnreachableError(f"cannot reach the coordinator at {where}: {exc}")

    def _call(self, method: str, path: str, ok: int = 200, **kwargs: Any) -> Any:
        status, data = self._request(method, path, **kwargs)
        if status != ok:
            raise self._error(status, data)
        return data

    def _error(self, status: int, data: Any) -> LitecoordError:
        if isinstance(data, dict) and isinstance(data.get("code"), str) and "detail" in data:
            # Codes without a class of their own (method_not_allowed, malformed_json...)
            # keep the server's code and status on a base-class error.
            return error_from_dict(data, status)
        return CoordinatorUnreachableError(
            f"the coordinator at {self.base_url} answered {status}: {str(data)[:200]}", status=status
        )

    def close(self) -> None:
        for transport in self._servers.transports:
            transport.close()

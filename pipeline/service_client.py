"""JSON calls from the pipeline to std_service and str_service: the distributed topology's HTTP.

Their JSON errors pass through with their status and code; anything else is a 502. Every call
carries the API key when OCR_API_KEY is set (one key serves every topology) and the request's
deadline as X-OCR-Deadline, so the service drops work nobody will wait for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests

from common.errors import Timeout, UpstreamError, error_from_payload
from common.http import DEADLINE_HEADER


@dataclass(frozen=True)
class Relayed:
    """A service's answer passed back unchanged (the distributed /detection and /recognition)."""

    content: bytes
    status: int
    content_type: str
    headers: dict[str, str]


class ServiceClient:
    """One service's base URL, with a requests session per thread."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def headers(self, deadline: float | None = None) -> dict[str, str]:
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        if deadline is not None:
            headers[DEADLINE_HEADER] = str(int(deadline * 1000))
        return headers

    def post(self, path: str, deadline: float, **kwargs: object) -> dict:
        """POST and return the JSON object answered; the service's error raised as ours."""
        url = self.base_url + path
        response = self._send(url, deadline, **kwargs)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            raise error_from_payload(response.status_code, payload)
        if not isinstance(payload, dict):
            raise UpstreamError(f"{url} answered without a JSON object")
        return payload

    def ready(self) -> bool:
        try:
            response = self.session().get(
                self.base_url + "/readyz", headers=self.headers(), timeout=2
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def relay(
        self,
        path: str,
        deadline: float,
        body: bytes,
        content_type: str,
        query: Mapping[str, str],
    ) -> Relayed:
        """Send a client's request body on to the service and return its answer as it is."""
        upstream = self._send(
            self.base_url + path,
            deadline,
            data=body,
            headers={"Content-Type": content_type},
            params=query,
        )
        return Relayed(
            upstream.content,
            upstream.status_code,
            upstream.headers.get("Content-Type", "application/json"),
            {k: v for k, v in upstream.headers.items() if k == "Retry-After"},
        )

    def _send(
        self,
        url: str,
        deadline: float,
        headers: Mapping[str, str] | None = None,
        **kwargs: object,
    ) -> requests.Response:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise Timeout(f"the request's deadline passed before {url} was called")
        sent = dict(headers or {}) | self.headers(deadline)
        try:
            return self.session().post(url, timeout=remaining, headers=sent, **kwargs)
        except requests.Timeout:
            raise Timeout(f"{url} did not answer within the {remaining:.1f}s left") from None
        except requests.RequestException as exc:
            raise UpstreamError(f"{url} did not answer: {type(exc).__name__}") from None

"""Resumable HTTP(S) downloads with the standard library: Range resume, retries, auth.

The official VoxCeleb parts are up to 9 GB each, so a dropped connection must not
mean starting again. :class:`Fetcher` writes ``<name>.part`` and, when that file
already holds bytes from an earlier attempt (or an earlier run), asks the server for
the rest with ``Range: bytes=<size>-``. A server that answers ``206 Partial Content``
is appended to; one that ignores the header (``200``) is downloaded from the start.
Only a complete file is renamed to its final name.

Credentials (HTTP basic auth, or an access key inside a mirror URL) come from flags
or the environment (:meth:`Credentials.resolve`) and never appear in a message or log
line: every URL and error text shown passes through :meth:`Credentials.redact`, and
basic-auth credentials are only sent to the URL they were given for (not to another
host a redirect points to).
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from tqdm.auto import tqdm

from keras_spkid import __version__
from keras_spkid.atomic import part_path
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.errors import SpkidError

logger = logging.getLogger(__name__)

USER_ENV = "SPKID_VOX_USER"
PASSWORD_ENV = "SPKID_VOX_PASSWORD"
KEY_ENV = "SPKID_VOX_KEY"

_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Secrets for a download server; ``repr`` never shows them.

    Attributes:
        user: basic-auth user name.
        password: basic-auth password.
        key: access key substituted for ``{key}`` in a mirror URL template.
    """

    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    key: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def resolve(cls, user=None, password=None, key=None, environ=None) -> Credentials:
        """Flags win over ``$SPKID_VOX_USER``, ``$SPKID_VOX_PASSWORD``, ``$SPKID_VOX_KEY``.

        The environment is the safer place: flags show in the process list.
        """
        environ = os.environ if environ is None else environ
        return cls(
            user=user or environ.get(USER_ENV) or None,
            password=password or environ.get(PASSWORD_ENV) or None,
            key=key or environ.get(KEY_ENV) or None,
        )

    def redact(self, text: str) -> str:
        """``text`` with the password and key (plain or URL-quoted) replaced by ``***``."""
        for secret in (self.password, self.key):
            if secret:
                for form in {secret, quote(secret, safe=""), quote(secret)}:
                    text = text.replace(form, "***")
        return text


class FetchError(SpkidError):
    """A download failed. The message names the (redacted) URL and what went wrong.

    Attributes:
        status: the HTTP status, when the server answered.
        transient: whether trying again later may succeed.
    """

    def __init__(self, message: str, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient


class Fetcher:
    """Download URLs to files, resuming partial files, with retries and back-off.

    Args:
        credentials: basic-auth user/password (sent with every request to the URL
            being fetched) and the key for URL templates.
        retry: retries and back-off for transient errors (connection drops,
            timeouts, HTTP 408/425/429/5xx). 401/403/404 and other 4xx fail at once.
        timeout: seconds without data before a connection counts as dropped.
        progress: show a tqdm byte counter per file.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        progress: bool = False,
        chunk_size: int = 1 << 20,
    ):
        self.credentials = credentials or Credentials()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.progress = progress
        self.chunk_size = chunk_size
        self._opener = urllib.request.build_opener()

    def fetch(self, url: str, dest) -> Path:
        """Download ``url`` to ``dest`` (resuming ``dest.part``); return ``dest``.

        Raises:
            FetchError: a permanent HTTP error, or transient errors that outlasted
                the retries; the message never contains a credential.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shown = self.credentials.redact(url)
        self.retry.call(
            lambda: self._attempt(url, part_path(dest), shown),
            is_transient=lambda error: not isinstance(error, FetchError) or error.transient,
            describe=shown,
        )
        os.replace(part_path(dest), dest)
        return dest

    def _request(self, url: str, offset: int) -> urllib.request.Request:
        request = urllib.request.Request(url, headers={"User-Agent": f"keras-spkid/{__version__}"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        if self.credentials.user is not None:
            # An unredirected header: urllib drops it when following a redirect, so
            # the password never reaches another host.
            token = f"{self.credentials.user}:{self.credentials.password or ''}"
            request.add_unredirected_header(
                "Authorization", "Basic " + base64.b64encode(token.encode()).decode("ascii")
            )
        return request

    def _attempt(self, url: str, tmp: Path, shown: str) -> None:
        """One request: append to (or restart) ``tmp`` until the server's end."""
        offset = tmp.stat().st_size if tmp.exists() else 0
        try:
            response = self._opener.open(self._request(url, offset), timeout=self.timeout)
        except urllib.error.HTTPError as error:
            with error:
                if error.code == 416 and offset:
                    self._range_not_satisfiable(error, tmp, offset, shown)
                    return
                raise FetchError(
                    f"{shown}: HTTP {error.code} {error.reason}" + _status_hint(error.code),
                    status=error.code,
                    transient=error.code in _TRANSIENT_STATUS,
                ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise FetchError(
                f"{shown}: {self.credentials.redact(str(error))}", transient=True
            ) from None
        with response:
            if offset and response.status == 206:
                start, _ = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    tmp.unlink()
                    raise FetchError(
                        f"{shown}: server resumed at byte {start}, not {offset}", transient=True
                    )
                mode = "ab"
            else:  # 200: no partial file, or the server ignored the Range header
                if offset:
                    logger.info("%s: server does not resume, downloading from the start", shown)
                offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            self._stream(response, tmp, mode, offset, total, shown)
        size = tmp.stat().st_size
        if total is not None and size != total:
            raise FetchError(
                f"{shown}: connection closed after {size} of {total} bytes", transient=True
            )

    def _stream(self, response, tmp: Path, mode: str, offset: int, total, shown: str) -> None:
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=tmp.name.removesuffix(".part"),
            disable=not self.progress,
            dynamic_ncols=True,
            leave=False,
        )
        try:
            with open(tmp, mode) as handle:
                while chunk := response.read(self.chunk_size):
                    handle.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as error:
            # What arrived is on disk; the next attempt resumes after it.
            reason = self.credentials.redact(str(error)) or type(error).__name__
            raise FetchError(f"{shown}: {reason}", transient=True) from None
        finally:
            bar.close()

    @staticmethod
    def _range_not_satisfiable(error, tmp: Path, offset: int, shown: str) -> None:
        """HTTP 416 on a resume: complete when the partial file has the full size."""
        _, total = _parse_content_range(error.headers.get("Content-Range"))
        if total == offset:
            return
        tmp.unlink()
        raise FetchError(
            f"{shown}: partial file larger than the remote one; restarting",
            status=416,
            transient=True,
        )


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range`` header; ``None`` if unknown."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return " (check the user name and password, or the access key)"
    if status == 404:
        return " (the file is not on this server; try another --mirror)"
    return ""

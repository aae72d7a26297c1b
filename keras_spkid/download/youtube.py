"""The audio of one YouTube video, through the yt-dlp Python API, decoded to 16 kHz.

Each video is downloaded once, whole, as its best audio-only format, into a working
folder (never the current directory) under the name ``<youtube_id>.<ext>``; yt-dlp
writes it as ``<youtube_id>.<ext>.part`` and renames it when complete, so a file
without a temporary suffix is a complete download and is reused by a later run. It is
then decoded to 16 kHz mono with ffmpeg, once, and the caller cuts utterances out of
the samples. Cutting in memory instead of with yt-dlp's ``--download-sections`` avoids
two known problems (cuts that need ``force_keyframes_at_cuts``, and sources truncated
by servers without Range support) and decodes a video once however many utterances
it holds.

Failures are sorted into two kinds. :class:`VideoUnavailable` (private, removed,
blocked, HTTP 404/410/403) will not get better and is not retried; anything else (a
dropped connection, HTTP 5xx/429, a corrupt download) is retried with back-off.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import yt_dlp

from keras_spkid.download.ffmpeg import decode_pcm16
from keras_spkid.download.files import remove_partials
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.errors import AudioError

logger = logging.getLogger(__name__)

DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={id}"
"""Where a video id is fetched from; ``{id}`` is replaced by the id."""

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
"""Every YouTube video id: 11 characters of the URL-safe base64 alphabet."""

TEMPORARY_PATTERNS = ("*.part", "*.part-Frag*", "*.ytdl", "*.temp.*")
"""yt-dlp's temporary files: partial downloads, fragments, resume state, fix-ups."""

# yt-dlp messages of a video that is gone for good (checked after HTTP statuses).
_GONE = re.compile(
    r"video unavailable|private video|has been removed|no longer available|"
    r"account associated with this video has been terminated|copyright|"
    r"not available in your country|members-only|confirm your age|"
    r"unsupported url|this video is not available",
    re.IGNORECASE,
)
# ... except these, which say YouTube is throttling this machine, not that the video is gone.
_THROTTLED = re.compile(r"not a bot|too many requests|rate.?limit", re.IGNORECASE)
_TRANSIENT_STATUS = {408, 425, 429}


class VideoUnavailable(Exception):
    """The video cannot be had (private, removed, 404); retrying will not help."""


def youtube_url(template: str, youtube_id: str) -> str:
    """``template`` with ``{id}`` replaced by ``youtube_id``."""
    return template.replace("{id}", youtube_id)


class AudioDownloader:
    """Download and decode the audio of YouTube videos, one call per video.

    Args:
        work_dir: folder for downloads and yt-dlp's temporary files.
        url_template: video URL with an ``{id}`` placeholder. Tests point it at a
            local server (``http://127.0.0.1:8000/{id}.webm``), which yt-dlp's
            generic extractor downloads as a direct media link.
        retry: retries and back-off for transient errors.
        socket_timeout: seconds without data before a connection counts as dropped.
    """

    def __init__(
        self,
        work_dir,
        url_template: str = DEFAULT_URL_TEMPLATE,
        retry: RetryPolicy | None = None,
        socket_timeout: float = 30.0,
    ):
        if "{id}" not in url_template:
            raise ValueError(f"the URL template needs an {{id}} placeholder: {url_template!r}")
        self.work_dir = Path(work_dir).resolve()
        self.url_template = url_template
        self.retry = retry or RetryPolicy()
        self.socket_timeout = socket_timeout

    def clean(self) -> int:
        """Remove yt-dlp's temporary files left by an interrupted run; return how many."""
        return remove_partials(self.work_dir, TEMPORARY_PATTERNS)

    def downloaded(self, youtube_id: str) -> Path | None:
        """The complete download of a video from an earlier call, if there is one."""
        if not self.work_dir.is_dir():
            return None
        for path in sorted(self.work_dir.glob(f"{youtube_id}.*")):
            if not any(path.match(pattern) for pattern in TEMPORARY_PATTERNS):
                return path
        return None

    def discard(self, youtube_id: str) -> None:
        """Delete the download of a video (once all its utterances are cut)."""
        path = self.downloaded(youtube_id)
        if path is not None:
            path.unlink()

    def audio(self, youtube_id: str) -> np.ndarray:
        """The video's audio as ``int16`` samples of shape ``[samples]``, 16 kHz mono.

        Reuses a complete earlier download. A download that ffmpeg cannot decode is
        deleted and fetched again (it counts as a transient error).

        Raises:
            VideoUnavailable: the video is gone; not retried.
            yt_dlp.utils.DownloadError, AudioError: transient errors (the only ones
                retried) that outlasted the retries.
            SpkidError: ffmpeg is missing.
        """
        return self.retry.call(
            lambda: self._attempt(youtube_id),
            is_transient=lambda error: isinstance(error, (yt_dlp.utils.DownloadError, AudioError)),
            describe=f"video {youtube_id}",
        )

    def _attempt(self, youtube_id: str) -> np.ndarray:
        path = self.downloaded(youtube_id) or self._download(youtube_id)
        try:
            return decode_pcm16(path)
        except AudioError:
            path.unlink(missing_ok=True)
            raise

    def _download(self, youtube_id: str) -> Path:
        url = youtube_url(self.url_template, youtube_id)
        try:
            with yt_dlp.YoutubeDL(self._options(youtube_id)) as ydl:
                info = ydl.extract_info(url, download=True)
        except yt_dlp.utils.DownloadError as error:
            message = one_line(str(error))
            if is_unavailable(error):
                raise VideoUnavailable(message) from None
            raise yt_dlp.utils.DownloadError(message) from None
        return Path(info["requested_downloads"][0]["filepath"])

    def _options(self, youtube_id: str) -> dict:
        """yt-dlp options: one audio file into the work folder, quiet, no extras.

        yt-dlp's own retries are kept low (``retries=1`` still resumes a dropped
        transfer once); the outer :class:`RetryPolicy` does the patient retrying.
        """
        return {
            "format": "bestaudio/best",
            "paths": {"home": str(self.work_dir), "temp": str(self.work_dir)},
            "outtmpl": {"default": f"{youtube_id}.%(ext)s"},
            "noplaylist": True,
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": _YtdlpLogger(),
            "retries": 1,
            "fragment_retries": 1,
            "extractor_retries": 0,
            "socket_timeout": self.socket_timeout,
            "cachedir": False,
            "fixup": "never",
            "updatetime": False,
        }


def is_unavailable(error: BaseException) -> bool:
    """Whether a yt-dlp error means the video is gone (versus a transient problem).

    Looks through the chain of causes for an HTTP status first (4xx other than
    408/425/429 is gone, 5xx is transient), then for a network error (transient),
    then at the message (private, removed, blocked, ...).
    """
    message = str(error)
    if _THROTTLED.search(message):
        return False
    for cause in _causes(error):
        status = getattr(cause, "status", None) or getattr(cause, "code", None)
        if isinstance(status, int) and 400 <= status < 600:
            return status < 500 and status not in _TRANSIENT_STATUS
        if isinstance(cause, (yt_dlp.networking.exceptions.TransportError, OSError)):
            return False
    return _GONE.search(message) is not None


def _causes(error: BaseException):
    """``error`` and the exceptions it wraps (yt-dlp's ``exc_info``/``cause`` too)."""
    seen, todo = set(), [error]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        wrapped = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
        todo += [wrapped, getattr(current, "cause", None), current.__cause__, current.__context__]


def one_line(message: str) -> str:
    """A yt-dlp message fit for one TSV cell: no ``ERROR:`` prefix, tabs or newlines."""
    message = re.sub(r"^ERROR:\s*", "", message.strip())
    return re.sub(r"\s+", " ", message)


class _YtdlpLogger:
    """Sends yt-dlp's output to the debug log; errors are reported by the caller."""

    def debug(self, message: str) -> None:
        logger.debug("yt-dlp: %s", message)

    info = warning = error = debug

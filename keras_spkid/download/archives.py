"""Archives: parts with MD5 sums, concatenation, safe extraction.

The official VoxCeleb release is a set of zip files, the large ones split into parts
(``vox1_dev_wav_partaa`` .. ``partad``, ``vox2_dev_aac_partaa`` .. ``partah``) that are
joined with ``cat``. Each part and each joined archive has a published MD5 sum. This
module downloads parts (resuming with :class:`~keras_spkid.download.fetch.Fetcher`),
checks every MD5 (a wrong sum means the file is deleted and fetched again, a bounded
number of times), joins parts, and extracts zip or tar archives member by member,
rejecting absolute and ``..`` member names.

A verified file gets a ``<file>.md5`` stamp (``md5sum`` format), so a rerun does not
hash 70 GB again; the stamp only counts while it is newer than the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlparse

from keras_spkid.atomic import atomic_path, write_text_atomic
from keras_spkid.data.catalogue import check_relative_path
from keras_spkid.download.fetch import Credentials, Fetcher
from keras_spkid.download.files import md5sum
from keras_spkid.errors import DataError, ListFormatError, SpkidError

logger = logging.getLogger(__name__)

_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@dataclasses.dataclass(frozen=True)
class Part:
    """One file to download.

    Attributes:
        name: file name on disk (one path component).
        md5: expected hex MD5 of the file.
        url: where to get it; ``None`` to build the URL from a mirror (:func:`part_url`).
    """

    name: str
    md5: str
    url: str | None = None


def part_url(part: Part, mirror: str, credentials: Credentials) -> str:
    """The URL of a part: its own, else from ``mirror``.

    ``mirror`` is either a base URL (the part name is appended after a ``/``) or a
    template with ``{name}`` and optionally ``{key}`` (the access key), e.g.
    ``https://cn01.mmai.io/download/voxceleb?file={name}&key={key}``.

    Raises:
        SpkidError: the template needs a key and none was given.
    """
    if part.url:
        return part.url
    if "{name}" not in mirror:
        return mirror.rstrip("/") + "/" + quote(part.name)
    if "{key}" in mirror and not credentials.key:
        raise SpkidError(
            f"mirror {mirror} needs an access key: give --key or set "
            "SPKID_VOX_KEY (or choose another --mirror)"
        )
    return mirror.replace("{name}", quote(part.name)).replace(
        "{key}", quote(credentials.key or "", safe="")
    )


def read_part_list(path) -> list[Part]:
    """Read a part list: one ``<URL or file name> <md5>`` per line.

    The format of voxceleb_trainer's ``lists/fileparts.txt`` and ``augment.txt``. A
    URL's last path component is the file name; a bare name is fetched from the
    mirror. Blank lines and ``#`` comments are skipped.

    Raises:
        DataError: missing or empty file.
        ListFormatError: naming the line, for a wrong shape, a bad MD5 or a name that
            is not one safe path component.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: part list not found (lines '<URL or name> <md5>')")
    expected = "'<URL or file name> <32 hex digit md5>'"
    parts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) != 2 or not _MD5.fullmatch(tokens[1]):
            raise ListFormatError(path, number, line, expected)
        location = tokens[0]
        is_url = "://" in location
        name = PurePosixPath(urlparse(location).path).name if is_url else location
        if not name or "/" in check_relative_path(name, path, number):
            raise ListFormatError(path, number, line, "a file name without folders")
        parts.append(Part(name, tokens[1].lower(), location if is_url else None))
    if not parts:
        raise DataError(f"{path}: no parts listed")
    return parts


# ----------------------------------------------------------------------- MD5 stamps


def stamp_path(path) -> Path:
    """The ``<file>.md5`` stamp written once ``file`` has been verified."""
    path = Path(path)
    return path.with_name(path.name + ".md5")


def is_verified(path, md5: str) -> bool:
    """True if ``path`` exists and a stamp newer than it records ``md5``."""
    path, stamp = Path(path), stamp_path(path)
    if not (path.is_file() and stamp.is_file()):
        return False
    recorded = stamp.read_text(encoding="utf-8").split(maxsplit=1)
    return (
        bool(recorded)
        and recorded[0] == md5.lower()
        and stamp.stat().st_mtime_ns >= path.stat().st_mtime_ns
    )


def _write_stamp(path: Path, md5: str) -> None:
    write_text_atomic(stamp_path(path), f"{md5}  {path.name}\n")


def remove_verified(path) -> None:
    """Delete a file and its stamp (a part after joining, an archive after extraction)."""
    Path(path).unlink(missing_ok=True)
    stamp_path(path).unlink(missing_ok=True)


# -------------------------------------------------------------- download and join


def fetch_verified(part: Part, folder, url: str, fetcher: Fetcher, attempts: int = 3) -> Path:
    """Download ``part`` into ``folder`` until its MD5 is right; return its path.

    A file already there is checked first (and kept when right). A wrong MD5 deletes
    the file and downloads it again, at most ``attempts`` downloads in all.

    Raises:
        DataError: still wrong after ``attempts`` downloads.
        FetchError: the download itself failed.
    """
    dest = Path(folder) / part.name
    if is_verified(dest, part.md5):
        return dest
    for attempt in range(1, attempts + 1):
        if not dest.is_file():
            fetcher.fetch(url, dest)
        got = md5sum(dest)
        if got == part.md5:
            _write_stamp(dest, got)
            return dest
        remove_verified(dest)
        logger.warning(
            "%s: MD5 %s, expected %s; deleted (download %d of %d)",
            dest,
            got,
            part.md5,
            attempt,
            attempts,
        )
    raise DataError(
        f"{dest}: MD5 still wrong after {attempts} downloads (expected {part.md5}); the "
        "server sends another file: check the part list or try another --mirror"
    )


def concatenate(paths: list[Path], out, md5: str) -> Path:
    """Join ``paths`` in order into ``out`` (like ``cat``) and check the MD5 of the whole.

    Raises:
        DataError: the joined MD5 differs; ``out`` is not left behind.
    """
    out = Path(out)
    if is_verified(out, md5):
        return out
    digest = hashlib.md5()
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as target:
            for path in paths:
                with open(path, "rb") as source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        target.write(chunk)
        if digest.hexdigest() != md5.lower():
            raise DataError(
                f"{out}: MD5 of the joined parts is {digest.hexdigest()}, expected {md5} "
                f"(parts: {', '.join(p.name for p in paths)}); delete them and run again"
            )
    _write_stamp(out, md5.lower())
    return out


# ----------------------------------------------------------------------- extraction

MemberMap = Callable[[str], "str | None"]
"""Maps an archive member name to its path under the target folder, or None to skip."""


def extract(archive, dest, select: MemberMap | None = None) -> int:
    """Extract the regular files of a zip or tar(.gz) archive under ``dest``.

    Each member is written through ``<file>.part`` and renamed, so an interrupted
    extraction resumes: a member whose file exists with the right size is skipped.
    Links, devices and folders are not created (folders come with their files).

    Args:
        archive: ``.zip``, ``.tar``, ``.tar.gz`` (recognised by content).
        dest: target folder.
        select: maps a member name to its relative output path, or ``None`` to
            leave it out; default keeps every name.

    Returns:
        The number of files written (skipped ones not counted).

    Raises:
        DataError: the archive cannot be read, or a member has an absolute or
            ``..`` name (a corrupt or malicious archive; extraction stops there and
            nothing is written outside ``dest``).
    """
    archive, dest = Path(archive), Path(dest)
    written = 0
    for name, size, open_member in _members(archive):
        try:
            rel = check_relative_path(name, archive)
        except ListFormatError:
            raise DataError(
                f"{archive}: unsafe member name {name!r} (absolute or '..'); "
                "the archive is corrupt or malicious, delete it"
            ) from None
        rel = select(rel) if select else rel
        if rel is None:
            continue
        target = dest / check_relative_path(rel, archive)
        if target.is_file() and target.stat().st_size == size:
            continue
        with atomic_path(target) as tmp, open(tmp, "wb") as out, open_member() as source:
            shutil.copyfileobj(source, out, 1 << 20)
        written += 1
    return written


def _members(archive: Path) -> Iterator[tuple[str, int, Callable]]:
    """``(name, size, open)`` for each regular file of a zip or tar archive."""
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            for info in handle.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, lambda info=info: handle.open(info)
        return
    with _open_tar(archive) as handle:
        for member in handle:
            if member.isfile():
                yield member.name, member.size, lambda m=member: handle.extractfile(m)
            elif not member.isdir():
                logger.debug("%s: skipping non-file member %s", archive, member.name)


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except tarfile.TarError as error:
        raise DataError(
            f"{archive}: not a zip or tar archive ({error}); delete it and download it again"
        ) from None


def voxceleb_member(name: str) -> str | None:
    """Map a VoxCeleb zip member to the official layout, or ``None`` to skip it.

    The zips differ in what precedes the audio tree (``wav/id10001/...`` in
    ``vox1_dev_wav.zip``, ``dev/aac/id00012/...`` in ``vox2_dev_aac.zip``). Whatever
    it is, ``.../<wav|aac>/<speaker>/<youtube_id>/<file>`` becomes
    ``<wav|aac>/<speaker>/<youtube_id>/<file>`` under the split folder.
    """
    parts = PurePosixPath(name).parts
    if len(parts) >= 4 and parts[-4] in ("wav", "aac"):
        return "/".join(parts[-4:])
    return None

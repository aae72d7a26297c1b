"""The official VoxCeleb release: which archives exist and where they unpack to.

``prepare_release`` runs the whole chain for one data set, each step skipping what an
earlier run finished: download the parts (resuming, MD5-checked), join them (MD5 of
the whole), extract into the official layout, and for VoxCeleb2 convert m4a to 16 kHz
wav. The result is the layout of voxceleb_trainer's ``dataprep.py``::

    <out>/voxceleb1/dev/wav/<speaker>/<youtube_id>/<NNNNN>.wav
    <out>/voxceleb1/test/wav/...
    <out>/voxceleb2/dev/aac/...  and  <out>/voxceleb2/dev/wav/...
    <out>/voxceleb2/test/aac/... and  <out>/voxceleb2/test/wav/...

Parts and archives are kept in ``<out>/archives/`` while needed and deleted after use
unless asked otherwise (VoxCeleb2 dev alone is 70 GB).

The MD5 sums are the published ones (voxceleb_trainer ``lists/fileparts.txt`` and
``lists/files.txt``). Download hosts have moved several times; the default mirror is
the one voxceleb_trainer uses today, which needs an access key.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from keras_spkid.atomic import write_text_atomic
from keras_spkid.download.archives import (
    Part,
    concatenate,
    extract,
    fetch_verified,
    part_url,
    remove_verified,
    voxceleb_member,
)
from keras_spkid.download.convert import convert_tree
from keras_spkid.download.fetch import Fetcher
from keras_spkid.download.files import remove_partials

logger = logging.getLogger(__name__)

DEFAULT_MIRROR = "https://cn01.mmai.io/download/voxceleb?file={name}&key={key}"


@dataclasses.dataclass(frozen=True)
class Release:
    """One downloadable VoxCeleb data set.

    Attributes:
        name: short name used on the command line (``vox1-dev``).
        parts: files to download, in joining order.
        archive: the zip they form (the single part itself when there is one).
        md5: MD5 of the joined archive (unused for a single part, whose own counts).
        target: folder under the output root that receives ``wav/`` or ``aac/``.
        convert: whether the audio is m4a, to be converted to a ``wav/`` tree.
    """

    name: str
    parts: tuple[Part, ...]
    archive: str
    md5: str
    target: str
    convert: bool = False


def _split_parts(prefix: str, md5s: list[str]) -> tuple[Part, ...]:
    """Parts ``<prefix>aa``, ``<prefix>ab``, ... (the names ``split`` gives)."""
    return tuple(Part(f"{prefix}a{chr(ord('a') + i)}", md5) for i, md5 in enumerate(md5s))


RELEASES = {
    release.name: release
    for release in (
        Release(
            "vox1-dev",
            _split_parts("vox1_dev_wav_part", [
                "e395d020928bc15670b570a21695ed96", "bbfaaccefab65d82b21903e81a8a8020",
                "017d579a2a96a077f40042ec33e51512", "7bb1e9f70fddc7a678fa998ea8b3ba19",
            ]),
            "vox1_dev_wav.zip", "ae63e55b951748cc486645f532ba230b", "voxceleb1/dev",
        ),
        Release(
            "vox1-test",
            (Part("vox1_test_wav.zip", "185fdc63c3c739954633d50379a3d102"),),
            "vox1_test_wav.zip", "185fdc63c3c739954633d50379a3d102", "voxceleb1/test",
        ),
        Release(
            "vox2-dev",
            _split_parts("vox2_dev_aac_part", [
                "da070494c573e5c0564b1d11c3b20577", "17fe6dab2b32b48abaf1676429cdd06f",
                "1de58e086c5edf63625af1cb6d831528", "5a043eb03e15c5a918ee6a52aad477f9",
                "cea401b624983e2d0b2a87fb5d59aa60", "fc886d9ba90ab88e7880ee98effd6ae9",
                "d160ecc3f6ee3eed54d55349531cb42e", "6b84a81b9af72a9d9eecbb3b1f602e65",
            ]),
            "vox2_dev_aac.zip", "bbc063c46078a602ca71605645c2a402", "voxceleb2/dev",
            convert=True,
        ),
        Release(
            "vox2-test",
            (Part("vox2_test_aac.zip", "0d2b3ea430a821c33263b5ea37ede312"),),
            "vox2_test_aac.zip", "0d2b3ea430a821c33263b5ea37ede312", "voxceleb2/test",
            convert=True,
        ),
    )
}  # fmt: skip


def prepare_release(
    release: Release,
    out_root,
    fetcher: Fetcher,
    mirror: str = DEFAULT_MIRROR,
    workers: int = 4,
    keep_archives: bool = False,
    progress: bool = True,
) -> Path:
    """Download, verify, join, extract and (VoxCeleb2) convert one release.

    Safe to interrupt and rerun: verified parts, the joined archive and extracted
    files are kept; a partial download resumes with a Range request.

    Returns:
        The split folder (``<out>/voxceleb1/test``), holding ``wav/``.

    Raises:
        FetchError: a download failed (the message never shows a credential).
        DataError: an MD5 stayed wrong, or the archive is unreadable.
    """
    out_root = Path(out_root)
    target = out_root / release.target
    done = target / f".extracted-{release.archive}"
    if not done.is_file():
        downloads = out_root / "archives"
        paths = [
            fetch_verified(part, downloads, part_url(part, mirror, fetcher.credentials), fetcher)
            for part in release.parts
        ]
        if len(paths) == 1:
            archive = paths[0]
        else:
            archive = concatenate(paths, downloads / release.archive, release.md5)
            if not keep_archives:
                for path in paths:
                    remove_verified(path)
        remove_partials(target)
        logger.info("extracting %s into %s", archive.name, target)
        extract(archive, target, select=voxceleb_member)
        write_text_atomic(done, f"{release.archive}\n")
        if not keep_archives:
            remove_verified(archive)
    if release.convert:
        converted, failures = convert_tree(target / "aac", target / "wav", workers, progress)
        logger.info("%s: converted %d m4a files to wav", target, converted)
        if failures:
            report = target / "conversion_failures.tsv"
            write_text_atomic(
                report,
                "path\treason\n"
                + "".join(f"{path}\t{reason}\n" for path, reason in sorted(failures.items())),
            )
            logger.warning("%d m4a file(s) could not be converted; see %s", len(failures), report)
    return target

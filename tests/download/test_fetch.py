"""Resumable HTTP downloads against a local server: Range resume, retries, credentials."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from keras_spkid.atomic import part_path
from keras_spkid.download.archives import Part, part_url
from keras_spkid.download.fetch import Credentials, Fetcher, FetchError
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.errors import SpkidError
from tests.fixtures.http_server import MediaServer

FAST = RetryPolicy(retries=2, backoff=0.01)
PASSWORD = "s3cret-Pa55:word"
KEY = "k3y/SECRET+value"


@pytest.fixture
def served(tmp_path):
    """A folder with one 300 kB random file, ``blob.bin``; returns (folder, bytes)."""
    folder = tmp_path / "served"
    folder.mkdir()
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (folder / "blob.bin").write_bytes(data)
    return folder, data


def test_dropped_connection_resumes_with_range(served, tmp_path):
    folder, data = served
    dest = tmp_path / "out" / "blob.bin"
    with MediaServer(folder) as server:
        server.cut("blob.bin", after_bytes=100_000)
        Fetcher(retry=FAST).fetch(server.url("blob.bin"), dest)
    assert dest.read_bytes() == data and not part_path(dest).exists()
    ranges = [(r.range, r.status) for r in server.requests]
    assert ranges == [(None, 200), ("bytes=100000-", 206)]


def test_partial_file_of_an_earlier_run_is_resumed(served, tmp_path):
    folder, data = served
    dest = tmp_path / "blob.bin"
    part_path(dest).write_bytes(data[:1234])
    with MediaServer(folder) as server:
        Fetcher(retry=FAST).fetch(server.url("blob.bin"), dest)
    assert dest.read_bytes() == data
    assert [r.range for r in server.requests] == ["bytes=1234-"]


def test_server_without_ranges_restarts_from_zero(served, tmp_path):
    folder, data = served
    dest = tmp_path / "blob.bin"
    part_path(dest).write_bytes(b"garbage" * 100)
    with MediaServer(folder, ranges=False) as server:
        Fetcher(retry=FAST).fetch(server.url("blob.bin"), dest)
    assert dest.read_bytes() == data
    assert [r.status for r in server.requests] == [200]


def test_complete_partial_file_needs_no_body(served, tmp_path):
    folder, data = served
    dest = tmp_path / "blob.bin"
    part_path(dest).write_bytes(data)  # killed after the last byte, before the rename
    with MediaServer(folder) as server:
        Fetcher(retry=FAST).fetch(server.url("blob.bin"), dest)
    assert dest.read_bytes() == data
    assert [r.status for r in server.requests] == [416]


def test_transient_errors_are_retried_and_permanent_ones_are_not(served, tmp_path):
    folder, data = served
    with MediaServer(folder) as server:
        server.fail("blob.bin", times=2, status=503)
        Fetcher(retry=FAST).fetch(server.url("blob.bin"), tmp_path / "a.bin")
        assert [r.status for r in server.requests] == [503, 503, 200]
        server.fail("blob.bin", times=FAST.retries + 1, status=502)
        with pytest.raises(FetchError, match="HTTP 502") as raised:
            Fetcher(retry=FAST).fetch(server.url("blob.bin"), tmp_path / "b.bin")
        assert raised.value.transient
        with pytest.raises(FetchError, match=r"missing\.bin: HTTP 404 .*another --mirror"):
            Fetcher(retry=FAST).fetch(server.url("missing.bin"), tmp_path / "c.bin")
        assert len(server.requests_for("missing.bin")) == 1
    assert (tmp_path / "a.bin").read_bytes() == data


def test_basic_auth_and_secrets_never_shown(served, tmp_path, caplog):
    folder, data = served
    caplog.set_level(logging.DEBUG)
    with MediaServer(folder, auth=("alice", PASSWORD)) as server:
        good = Credentials(user="alice", password=PASSWORD)
        Fetcher(good, FAST).fetch(server.url("blob.bin"), tmp_path / "ok.bin")
        bad = Credentials(user="alice", password=PASSWORD + "x", key=KEY)
        with pytest.raises(FetchError) as raised:
            Fetcher(bad, FAST).fetch(server.url(f"blob.bin?key={KEY}"), tmp_path / "no.bin")
    assert (tmp_path / "ok.bin").read_bytes() == data
    message = str(raised.value)
    assert "HTTP 401" in message and "key=***" in message
    for text in (message, caplog.text, repr(good), repr(bad)):
        assert PASSWORD not in text and "s3cret" not in text
        assert "SECRET" not in text and "k3y%2FSECRET" not in text


def test_credentials_from_flags_or_environment():
    environ = {
        "SPKID_VOX_USER": "env-user",
        "SPKID_VOX_PASSWORD": "env-pass",
        "SPKID_VOX_KEY": "env-key",
    }
    assert Credentials.resolve(environ=environ) == Credentials("env-user", "env-pass", "env-key")
    assert Credentials.resolve("flag-user", environ=environ).user == "flag-user"
    assert Credentials.resolve(environ={}) == Credentials()


def test_part_urls_from_a_mirror():
    part = Part("vox1_test_wav.zip", "0" * 32)
    assert (
        part_url(part, "http://host/vox1a/", Credentials()) == "http://host/vox1a/vox1_test_wav.zip"
    )
    template = "https://host/download?file={name}&key={key}"
    assert part_url(part, template, Credentials(key="a b")) == (
        "https://host/download?file=vox1_test_wav.zip&key=a%20b"
    )
    with pytest.raises(SpkidError, match="needs an access key"):
        part_url(part, template, Credentials())
    assert part_url(Part("x", "0" * 32, "http://own/x"), template, Credentials()) == "http://own/x"

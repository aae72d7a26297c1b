"""The demo's endpoints through ``gradio_client`` (Enrol and Identify above all, Verify,
Closest celebrity, Rename, Delete), against ``apps/gradio_demo.py`` serving on
127.0.0.1, with a restart in the middle that must keep the enrolled people.

(``gradio_client`` cannot drive streaming endpoints; the browser test covers Live.)
"""

from __future__ import annotations

import pytest

from tests.app.server import DemoServer

gradio_client = pytest.importorskip("gradio_client")


def enrol(client, name, files):
    clips = [gradio_client.handle_file(str(f)) for f in files] + [None] * (5 - len(files))
    message, people, *_ = client.predict(name, *clips, api_name="/enrol")
    return message, [tuple(row) for row in people["data"]]


def identify(client, file) -> str:
    answer, _, table, _ = client.predict(gradio_client.handle_file(str(file)), api_name="/identify")
    return answer, table["data"]


@pytest.mark.slow
def test_enrol_identify_and_restart(readers, silence_file, tmp_path):
    gallery = tmp_path / "people.npz"
    server = DemoServer(gallery, tmp_path / "server.log")
    with server:
        client = gradio_client.Client(server.url, verbose=False)
        message, people = enrol(client, "Alice", readers["alice"].enrol_files)
        assert message.startswith("Enrolled Alice from 3 clip(s); ") and people == [("Alice", 3)]
        assert message.endswith(" s of speech used.")
        message, people = enrol(client, "Bob", readers["bob"].enrol_files[:2])
        assert message.startswith("Enrolled Bob from 2 clip(s); ")
        assert people == [("Alice", 3), ("Bob", 2)]
        message, people = enrol(client, "", readers["bob"].enrol_files[:1])
        assert message.startswith("name: ") and people == [("Alice", 3), ("Bob", 2)]
        message, _ = enrol(client, "Carol", [silence_file])
        assert message == ("clip 1: clip is silent (check the microphone or the recording)")

        answer, bars = identify(client, readers["bob"].query_file)
        assert answer.startswith("Bob (score ")
        assert [row[0] for row in bars] == ["Bob", "Alice"] and bars[0][2] == "match"
        answer, bars = identify(client, silence_file)
        assert answer.startswith("query: clip is silent") and bars == []

        verdict = client.predict(
            *[
                gradio_client.handle_file(str(f))
                for f in (readers["alice"].enrol_files[0], readers["alice"].query_file)
            ],
            api_name="/verify",
        )
        assert verdict.startswith("same speaker: score ")
        answer, bars = client.predict(
            gradio_client.handle_file(str(readers["bob"].query_file)), api_name="/celebrity"
        )
        assert answer.startswith("You sound closest to LibriSpeech ") and len(bars["data"]) == 5
    assert gallery.is_file()

    with server:  # a new process: only the file carries the people over
        client = gradio_client.Client(server.url, verbose=False)
        people, _ = client.predict(api_name="/people")
        assert [tuple(row) for row in people["data"]] == [("Alice", 3), ("Bob", 2)]
        assert identify(client, readers["alice"].query_file)[0].startswith("Alice (score ")
        message, people, _ = client.predict("Bob", "Robert", api_name="/rename")
        assert message == "Renamed Bob to Robert." and people["data"][1] == ["Robert", 2]
        message, people, _ = client.predict("Alice", api_name="/delete")
        assert message == "Deleted Alice." and people["data"] == [["Robert", 2]]


@pytest.mark.slow
def test_uploaded_clips_are_deleted_when_the_server_stops(readers, tmp_path, monkeypatch):
    """Issue 14: every upload stayed in the system temp folder (441 files)."""
    uploads = tmp_path / "gradio-temp"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    # conv6 starts in seconds; what happens to the uploads does not depend on the model
    server = DemoServer(tmp_path / "people.npz", tmp_path / "server.log", "--model", "conv6")
    server.start()
    try:
        client = gradio_client.Client(server.url, verbose=False)
        answer, _ = identify(client, readers["bob"].query_file)
        assert answer.startswith("nobody is enrolled yet")
        held = [p for p in uploads.rglob("*") if p.is_file()]
        assert [p.name for p in held] == [readers["bob"].query_file.name]
    finally:
        server.stop()  # SIGTERM, as a service manager stops it
    assert not [p for p in uploads.rglob("*") if p.is_file()], server.tail()

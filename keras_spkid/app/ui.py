"""The demo page: a ``gr.Blocks`` with one tab per job, on top of :class:`SpeakerService`.

Tabs: **Enrol** (a name and 1-5 clips from the microphone or files; list, rename,
delete), **Identify** (top matches as a bar chart, "unknown" under the threshold),
**Live** (streaming microphone, answer updated about twice a second while someone
speaks), **Verify** (two clips: same speaker or not) and **Closest celebrity**.

Handlers only translate: page values in, service call, text and tables out. Bad input
comes back from the service as :class:`~keras_spkid.errors.SpkidError` and is shown as
its one line in the tab's message box, never as a traceback. Names typed by users only
ever reach text boxes, tables and plot labels (never Markdown or HTML). The page loads
no fonts or scripts from the internet, so it works on closed networks. The clips that
pages upload or record are files in Gradio's temporary folder: the page deletes them
(:data:`CLIP_CACHE`), also when the server is stopped with SIGTERM.
"""

from __future__ import annotations

import signal
import threading

import gradio as gr
import pandas as pd

from keras_spkid.app.live import UPDATE_SECONDS, WINDOW_SECONDS, LiveListener
from keras_spkid.app.service import MAX_CLIPS, SpeakerService
from keras_spkid.errors import SpkidError
from keras_spkid.search.gallery import UNKNOWN, Identification

THEME = gr.themes.Default(
    font=["system-ui", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "Consolas", "monospace"],
)
"""Gradio's default look with local fonts only (no Google Fonts request)."""

TOP_K = 5

CLIP_CACHE = (600, 3600)
"""Gradio's ``delete_cache``: every 10 minutes the clips uploaded or recorded more than an
hour ago are deleted, and all of them when the server stops."""


def scores_frame(result: Identification | None, threshold: float | None) -> pd.DataFrame:
    """The bar chart's data: one row per match, flagged above or under the threshold."""
    matches = result.matches if result is not None else []
    return pd.DataFrame(
        {
            "person": pd.Series([m.name for m in matches], dtype=str),
            "score": pd.Series([round(m.score, 4) for m in matches], dtype=float),
            "decision": pd.Series(
                [
                    "under threshold" if threshold is not None and m.score < threshold else "match"
                    for m in matches
                ],
                dtype=str,
            ),
        }
    )


def describe_identification(result: Identification) -> str:
    """One line: who it is (or "unknown"), the best score and the threshold."""
    best = result.matches[0]
    if result.threshold is None:
        return f"{best.name} (score {best.score:.3f}; no threshold: the closest is named)"
    if result.decision == UNKNOWN:
        return (
            f"{UNKNOWN} (the closest is {best.name} at {best.score:.3f}, under the "
            f"threshold {result.threshold:.3f})"
        )
    return f"{best.name} (score {best.score:.3f} >= threshold {result.threshold:.3f})"


def people_frame(service: SpeakerService) -> pd.DataFrame:
    rows = service.speakers()
    return pd.DataFrame({"name": [n for n, _ in rows], "clips": [c for _, c in rows]})


def _people_outputs(service: SpeakerService):
    """The enrolled-people table and the choices of the rename/delete menu."""
    names = [name for name, _ in service.speakers()]
    return people_frame(service), gr.Dropdown(choices=names, value=names[0] if names else None)


def build_demo(service: SpeakerService) -> gr.Blocks:
    """The page for ``service``; launch it with :func:`launch`."""
    plot = {
        "x": "person",
        "y": "score",
        "color": "decision",
        "sort": "-y",
        "height": 320,
        "color_map": {"match": "#2f9e44", "under threshold": "#adb5bd"},
    }

    with gr.Blocks(
        title="keras-spkid: who is speaking?", analytics_enabled=False, delete_cache=CLIP_CACHE
    ) as demo:
        gr.Markdown(
            "# Who is speaking?\nEnrol a few people with short clips, then let the "
            "page tell who is talking, or that it is someone it does not know."
        )
        with gr.Tab("Enrol"):
            name = gr.Textbox(
                label="Name", placeholder="e.g. Alice", max_length=80, elem_id="enrol-name"
            )
            clips = []
            for row in ((1, 2, 3), (4, 5)):
                with gr.Row():
                    for i in row:
                        clips.append(
                            gr.Audio(
                                sources=["microphone", "upload"],
                                type="filepath",
                                label=f"Clip {i}",
                                elem_id=f"enrol-clip-{i}",
                            )
                        )
            enrol_button = gr.Button("Enrol", variant="primary", elem_id="enrol-button")
            enrol_status = gr.Textbox(label="Message", interactive=False, elem_id="enrol-status")
            people = gr.Dataframe(
                value=people_frame(service),
                label="Enrolled people",
                interactive=False,
                elem_id="people",
            )
            with gr.Row():
                person = gr.Dropdown(
                    label="Person",
                    choices=[n for n, _ in service.speakers()],
                    elem_id="manage-person",
                )
                new_name = gr.Textbox(label="New name", max_length=80, elem_id="manage-new-name")
            with gr.Row():
                rename_button = gr.Button("Rename", elem_id="rename-button")
                delete_button = gr.Button("Delete", variant="stop", elem_id="delete-button")

        with gr.Tab("Identify"):
            gr.Markdown(
                f'Threshold for "unknown": {service.describe_threshold(service.threshold)}.'
            )
            query = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                label="Who is this?",
                elem_id="identify-clip",
            )
            identify_button = gr.Button("Identify", variant="primary", elem_id="identify-button")
            answer = gr.Textbox(label="Answer", interactive=False, elem_id="identify-answer")
            answer_plot = gr.BarPlot(
                label="Top matches (cosine score)",
                elem_id="identify-plot",
                caption="green: at or above the threshold; grey: under it",
                **plot,
            )

        with gr.Tab("Live"):
            gr.Markdown(
                f"Press record and talk: the speech of the last {WINDOW_SECONDS:g} s "
                f"is identified every {UPDATE_SECONDS:g} s while someone speaks; "
                "silence keeps the last answer."
            )
            mic = gr.Audio(
                sources=["microphone"],
                streaming=True,
                type="numpy",
                label="Microphone",
                elem_id="live-mic",
            )
            live_speaker = gr.Textbox(
                label="Speaking now", interactive=False, elem_id="live-speaker"
            )
            live_status = gr.Textbox(label="Status", interactive=False, elem_id="live-status")
            listener = gr.State(None)
            updates = gr.State(0)

        with gr.Tab("Verify"):
            gr.Markdown(
                'Threshold for "same speaker": '
                f"{service.describe_threshold(service.verify_threshold)}."
            )
            with gr.Row():
                clip_a = gr.Audio(
                    sources=["microphone", "upload"],
                    type="filepath",
                    label="Clip A",
                    elem_id="verify-a",
                )
                clip_b = gr.Audio(
                    sources=["microphone", "upload"],
                    type="filepath",
                    label="Clip B",
                    elem_id="verify-b",
                )
            verify_button = gr.Button("Same speaker?", variant="primary", elem_id="verify-button")
            verdict = gr.Textbox(label="Answer", interactive=False, elem_id="verify-answer")

        with gr.Tab("Closest celebrity"):
            gr.Markdown(_celebrity_note(service))
            celeb_clip = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                label="Your voice",
                elem_id="celebrity-clip",
            )
            celeb_button = gr.Button(
                "Who do I sound like?", variant="primary", elem_id="celebrity-button"
            )
            celeb_answer = gr.Textbox(label="Answer", interactive=False, elem_id="celebrity-answer")
            celeb_plot = gr.BarPlot(
                label="Closest voices (cosine score)", elem_id="celebrity-plot", **plot
            )

        # ----- handlers -----
        def enrol(name_text, *clip_values):
            try:
                done = service.enrol(name_text, clip_values)
            except SpkidError as error:
                return (
                    str(error),
                    *_people_outputs(service),
                    gr.skip(),
                    *([gr.skip()] * MAX_CLIPS),
                )
            message = (
                f"Enrolled {done.name} from {done.added} clip(s)."
                if done.new
                else f"Added {done.added} clip(s) to {done.name} ({done.clips} in all)."
            )
            return (message, *_people_outputs(service), "", *([None] * MAX_CLIPS))

        def rename(current, new):
            try:
                shown = service.rename(current, new)
                message = f"Renamed {current} to {shown}."
            except SpkidError as error:
                message = str(error)
            return (message, *_people_outputs(service))

        def delete(current):
            try:
                service.delete(current)
                message = f"Deleted {current}."
            except SpkidError as error:
                message = str(error)
            return (message, *_people_outputs(service))

        def identify(clip):
            try:
                result = service.identify(clip, TOP_K)
            except SpkidError as error:
                return str(error), scores_frame(None, None)
            return describe_identification(result), scores_frame(result, result.threshold)

        def live(chunk, state, count):
            state = state if state is not None else LiveListener()
            if chunk is None:
                return gr.skip(), gr.skip(), state, count
            try:
                update = service.live(state, *chunk)
            except SpkidError as error:
                return gr.skip(), str(error), state, count
            if update is None:
                return gr.skip(), gr.skip(), state, count
            count += 1
            heard = f"{update.speech_seconds:.1f} s of speech in the last {WINDOW_SECONDS:g} s"
            if update.identification is None:
                return (
                    gr.skip(),
                    f"update {count}: silence ({heard}); keeping the last answer",
                    state,
                    count,
                )
            return (
                describe_identification(update.identification),
                f"update {count}: listening ({heard})",
                state,
                count,
            )

        def verify(a, b):
            try:
                result = service.verify(a, b)
            except SpkidError as error:
                return str(error)
            if result.same is None:
                return f"score {result.score:.3f} (no calibrated threshold: no decision)"
            if result.same:
                return f"same speaker: score {result.score:.3f} >= threshold {result.threshold:.3f}"
            return (
                f"different speakers: score {result.score:.3f} < threshold {result.threshold:.3f}"
            )

        def celebrity(clip):
            try:
                result = service.closest_celebrity(clip, TOP_K)
            except SpkidError as error:
                return str(error), scores_frame(None, None)
            best = result.matches[0]
            return (
                f"You sound closest to {best.name} (score {best.score:.3f}).",
                scores_frame(result, None),
            )

        manage_outputs = [enrol_status, people, person]
        enrol_button.click(enrol, [name, *clips], [*manage_outputs, name, *clips], api_name="enrol")
        rename_button.click(rename, [person, new_name], manage_outputs, api_name="rename")
        delete_button.click(delete, [person], manage_outputs, api_name="delete")
        demo.load(lambda: _people_outputs(service), None, [people, person], api_name="people")
        identify_button.click(identify, query, [answer, answer_plot], api_name="identify")
        mic.start_recording(
            lambda: (None, 0, "", "listening..."),
            None,
            [listener, updates, live_speaker, live_status],
            api_name=False,
        )
        # one stream per open page, none waiting for another (a closed page's stream
        # lingers on the server until it times out)
        mic.stream(
            live,
            [mic, listener, updates],
            [live_speaker, live_status, listener, updates],
            stream_every=UPDATE_SECONDS,
            time_limit=None,
            concurrency_limit=None,
            api_name="live",
            show_progress="hidden",
        )
        verify_button.click(verify, [clip_a, clip_b], verdict, api_name="verify")
        celeb_button.click(celebrity, celeb_clip, [celeb_answer, celeb_plot], api_name="celebrity")
    return demo


def _celebrity_note(service: SpeakerService) -> str:
    """Where the celebrity gallery comes from (or why it cannot be used)."""
    try:
        gallery = service.celebrities()
    except SpkidError as error:
        return f"The celebrity gallery cannot be used: `{error}`"
    source = gallery.meta.get("source") or service.celebrities_path.name
    return (
        f"Compares your voice with {len(gallery)} voices: {source}. Build a VoxCeleb "
        "gallery with `closest_celeb.py build` and start the demo with `--celebrities`."
    )


MAX_UPLOAD = "50mb"
"""Largest file a page may upload (several minutes of WAV; enough for any clip)."""


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
):
    """Serve ``demo`` (local fonts, no analytics); ``block=False`` returns at once.

    Blocking in the main thread, SIGTERM stops the server as Ctrl-C does, so that the
    clips it holds are deleted (:data:`CLIP_CACHE`)."""
    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        theme=THEME,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=["api"],
    )

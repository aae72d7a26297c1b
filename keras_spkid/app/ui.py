"""The demo page: a ``gr.Blocks`` with one tab per job, on top of :class:`SpeakerService`.

Tabs: **Enrol** (a name and 1-5 clips from the microphone or files; list, rename,
delete; warnings for clips that disagree or hold too little speech), **Identify** (top
matches as a bar chart on a fixed 0-1 cosine axis with the threshold line and a legend,
"unknown" under the threshold), **Live** (streaming microphone, answer updated about
twice a second while someone speaks, and a timeline of who spoke when over the last
30 s), **Verify** (two clips: same speaker or not) and **Closest celebrity**. Every
"unknown" comes from the shared decision (:mod:`keras_spkid.scoring.decision`).

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
import numpy as np
import pandas as pd

from keras_spkid.app.live import (
    TIMELINE_SECONDS,
    UPDATE_SECONDS,
    WINDOW_SECONDS,
    LiveListener,
    SpeakerTimeline,
)
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


def scores_frame(result: Identification | None, threshold: float | None = None) -> pd.DataFrame:
    """The matches as rows: person, score, and whether it is at or above the threshold
    (``threshold``: the result's own unless given; ``None`` and no threshold: all match)."""
    matches = result.matches if result is not None else []
    if threshold is None and result is not None:
        threshold = result.threshold
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


NAMED_COLOUR, UNDER_COLOUR, THRESHOLD_COLOUR = "#2f9e44", "#adb5bd", "#e03131"


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot(1, 1, 1)


def identification_figure(result: Identification | None):
    """Top matches as horizontal bars of cosine score on a fixed 0-1 axis, best on top.

    The best match is green when it is named, grey otherwise (the others are grey: only
    the best can be named); the red line is the cosine score the best match needed
    (for AS-Norm decisions its threshold in cosine units).
    """
    from matplotlib.patches import Patch

    figure, ax = _figure(6.0, 3.2)
    matches = result.matches if result is not None else []
    names = [m.name for m in matches][::-1]
    cosines = [m.cosine if m.cosine is not None else m.score for m in matches][::-1]
    colours = [UNDER_COLOUR] * len(matches)
    if matches and result.decision != UNKNOWN:
        colours[0] = NAMED_COLOUR
    ax.barh(names, np.clip(cosines, 0.0, 1.0), color=colours[::-1])
    handles = [
        Patch(color=NAMED_COLOUR, label="named (best match, at or above the threshold)"),
        Patch(color=UNDER_COLOUR, label="not named"),
    ]
    threshold = None if result is None else result.cosine_threshold
    if threshold is not None:
        line = ax.axvline(
            min(max(threshold, 0.0), 1.0), color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.5
        )
        line.set_label(f"threshold {threshold:.3f}")
        handles.append(line)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("cosine score")
    ax.legend(handles=handles, loc="lower right", fontsize=7)
    ax.grid(True, axis="x", linewidth=0.3)
    figure.tight_layout()
    return figure


def timeline_frame(timeline: SpeakerTimeline | None) -> pd.DataFrame:
    """Who spoke when over the last :data:`TIMELINE_SECONDS`, as the Live tab's dot plot:
    one row per update that heard speech (the end of the 0.5 s it answers for),
    ``seconds ago`` (0 or negative) and ``who``.

    The browser draws it (a Gradio native plot): the server only sends these rows, so
    updating it twice a second costs next to nothing.
    """
    rows = []
    if timeline is not None:
        now = timeline.now
        for start, end, label in timeline.segments():
            points = np.arange(end, start + timeline.step / 2, -timeline.step)[::-1]
            rows += [(round(float(t - now), 2), label) for t in points]
    return pd.DataFrame(
        {
            "seconds ago": pd.Series([t for t, _ in rows], dtype=float),
            "who": pd.Series([w for _, w in rows], dtype=str),
        }
    )


def describe_identification(result: Identification) -> str:
    """One line: who it is (or "unknown"), the best score and the threshold."""
    best = result.matches[0]
    kind = "; AS-Norm scores" if result.score == "asnorm" else ""
    if result.threshold is None:
        return f"{best.name} (score {best.score:.3f}; no threshold: the closest is named)"
    if result.decision == UNKNOWN:
        return (
            f"{UNKNOWN} (the closest is {best.name} at {best.score:.3f}, under the "
            f"threshold {result.threshold:.3f}{kind})"
        )
    return f"{best.name} (score {best.score:.3f} >= threshold {result.threshold:.3f}{kind})"


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
            identify_note = gr.Markdown(
                f'Decision "unknown": {service.describe_decision()}.', elem_id="identify-note"
            )
            query = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                label="Who is this?",
                elem_id="identify-clip",
            )
            identify_button = gr.Button("Identify", variant="primary", elem_id="identify-button")
            answer = gr.Textbox(label="Answer", interactive=False, elem_id="identify-answer")
            answer_plot = gr.Plot(
                value=identification_figure(None),
                label="Top matches (cosine score, 0-1)",
                elem_id="identify-plot",
                format="png",
            )
            answer_table = gr.Dataframe(
                value=scores_frame(None, None),
                label="Top matches",
                interactive=False,
                elem_id="identify-table",
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
            live_timeline = gr.ScatterPlot(
                value=timeline_frame(None),
                x="seconds ago",
                y="who",
                color="who",
                x_lim=[-TIMELINE_SECONDS, 0],
                height=200,
                label=f"Who spoke when (last {TIMELINE_SECONDS:g} s)",
                elem_id="live-timeline",
            )
            listener = gr.State(None)
            updates = gr.State(0)
            timeline = gr.State(None)

        with gr.Tab("Verify"):
            gr.Markdown(f'Decision "same speaker": {service.describe_decision(verify=True)}.')
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
                f"Enrolled {done.name} from {done.added} clip(s)"
                if done.new
                else f"Added {done.added} clip(s) to {done.name} ({done.clips} in all)"
            ) + f"; {done.speech_seconds:.1f} s of speech used."
            if done.warnings:
                message += " Warning: " + "; ".join(done.warnings) + "."
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
            note = f'Decision "unknown": {service.describe_decision()}.'
            try:
                result = service.identify(clip, TOP_K)
            except SpkidError as error:
                return str(error), identification_figure(None), scores_frame(None), note
            return (
                describe_identification(result),
                identification_figure(result),
                scores_frame(result),
                note,
            )

        def live(chunk, state, count, history):
            state = state if state is not None else LiveListener()
            history = history if history is not None else SpeakerTimeline()
            skip = (gr.skip(), gr.skip())
            if chunk is None:
                return (*skip, state, count, history, gr.skip())
            try:
                update = service.live(state, *chunk)
            except SpkidError as error:
                return (gr.skip(), str(error), state, count, history, gr.skip())
            if update is None:
                return (*skip, state, count, history, gr.skip())
            count += 1
            heard = f"{update.speech_seconds:.1f} s of speech in the last {WINDOW_SECONDS:g} s"
            if update.identification is None:
                history.add(state.elapsed, None)
                return (
                    gr.skip(),
                    f"update {count}: silence ({heard}); keeping the last answer",
                    state,
                    count,
                    history,
                    timeline_frame(history),
                )
            history.add(state.elapsed, update.identification.decision)
            return (
                describe_identification(update.identification),
                f"update {count}: listening ({heard})",
                state,
                count,
                history,
                timeline_frame(history),
            )

        def verify(a, b):
            try:
                result = service.verify(a, b)
            except SpkidError as error:
                return str(error)
            kind = " (AS-Norm scores)" if result.kind == "asnorm" else ""
            if result.same is None:
                return f"score {result.score:.3f} (no calibrated threshold: no decision)"
            if result.same:
                return (
                    f"same speaker: score {result.score:.3f} >= threshold "
                    f"{result.threshold:.3f}{kind}"
                )
            return (
                f"different speakers: score {result.score:.3f} < threshold "
                f"{result.threshold:.3f}{kind}"
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
        identify_button.click(
            identify,
            query,
            [answer, answer_plot, answer_table, identify_note],
            api_name="identify",
        )
        mic.start_recording(
            lambda: (None, 0, None, "", "listening...", timeline_frame(None)),
            None,
            [listener, updates, timeline, live_speaker, live_status, live_timeline],
            api_name=False,
        )
        # one stream per open page, none waiting for another (a closed page's stream
        # lingers on the server until it times out)
        mic.stream(
            live,
            [mic, listener, updates, timeline],
            [live_speaker, live_status, listener, updates, timeline, live_timeline],
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

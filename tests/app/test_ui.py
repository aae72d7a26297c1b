"""What the page writes: the one-line answers and the bar chart's rows."""

from __future__ import annotations

from keras_spkid.app.live import SpeakerTimeline
from keras_spkid.app.ui import (
    describe_identification,
    identification_figure,
    scores_frame,
    timeline_frame,
)
from keras_spkid.search.gallery import UNKNOWN, Identification, Match

MATCHES = [Match("p1", "Alice", 0.71), Match("p2", "Bob", 0.42)]


def test_answers_name_known_unknown_and_unthresholded():
    known = Identification(MATCHES, "Alice", 0.7)
    assert describe_identification(known) == "Alice (score 0.710 >= threshold 0.700)"
    unknown = Identification(MATCHES, UNKNOWN, 0.75)
    assert describe_identification(unknown) == (
        "unknown (the closest is Alice at 0.710, under the threshold 0.750)"
    )
    assert describe_identification(Identification(MATCHES, "Alice", None)).startswith(
        "Alice (score 0.710; no threshold"
    )


def test_bar_rows_are_flagged_against_the_threshold():
    frame = scores_frame(Identification(MATCHES, "Alice", 0.5), 0.5)
    assert frame.values.tolist() == [["Alice", 0.71, "match"], ["Bob", 0.42, "under threshold"]]
    assert scores_frame(None, None).empty
    assert set(scores_frame(Identification(MATCHES, "Alice", None), None)["decision"]) == {"match"}


def test_identify_chart_has_a_fixed_axis_a_threshold_line_and_a_legend():
    matches = [Match("p1", "Alice", 2.9, 0.83), Match("p2", "Bob", 0.4, 0.31)]
    result = Identification(matches, "Alice", 2.2, "asnorm", 0.78)
    ax = identification_figure(result).axes[0]
    assert ax.get_xlim() == (0.0, 1.0)
    bars = {p.get_width() for p in ax.patches}
    assert bars == {0.83, 0.31}  # cosine scores, not the AS-Norm ones
    lines = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(lines) == 1 and lines[0].get_xdata()[0] == 0.78
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("named") and legend[1] == "not named"
    assert legend[2] == "threshold 0.780"
    empty = identification_figure(None).axes[0]
    assert empty.get_xlim() == (0.0, 1.0) and not empty.patches


def test_timeline_keeps_who_spoke_when_over_the_last_30_s():
    timeline = SpeakerTimeline(span=30.0, step=0.5)
    for i in range(1, 101):  # 50 s of updates
        t = 0.5 * i
        timeline.add(t, None if 60 <= i < 70 else ("Alice" if i < 80 else UNKNOWN))
    segments = timeline.segments()
    # each answer covers the 0.5 s before it; silence (30-34.5 s) ends a segment
    assert segments[0] == (20.0, 29.5, "Alice")  # clipped to the last 30 s
    assert segments[1] == (34.5, 39.5, "Alice") and segments[2] == (39.5, 50.0, UNKNOWN)
    frame = timeline_frame(timeline)
    assert frame["seconds ago"].min() > -30.0 and frame["seconds ago"].max() == 0.0
    assert set(frame["who"]) == {"Alice", UNKNOWN}
    assert len(frame) == 19 + 10 + 21  # one dot per update in the last 30 s
    assert frame["seconds ago"].is_unique
    assert timeline_frame(None).empty

"""What the page writes: the one-line answers and the bar chart's rows."""

from __future__ import annotations

from keras_spkid.app.ui import describe_identification, scores_frame
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

"""Open-set identification of the built-in model: strangers named and people named right.

Runs ``spkid eval openset`` on the test splits of ``../shared/data`` (WUW test speakers,
LibriSpeech test segments; FSDD's six speakers enrolled, whoever is left a stranger) for
5 and 20 people enrolled with 1 and 5 clips each, with the shipped open-set decision
(chosen on dev speakers by ``spkid eval calibrate-openset``) and the previous pair
threshold beside it on the same episodes, and records the table. It measures accuracy,
not speed. About 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import _common  # first: it quiets TensorFlow's start-up logging

from keras_spkid.cli.main import main as spkid
from keras_spkid.inference.model_io import resolve_model_path


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument(
        "--model", default=None, help="a preset name or .keras model (default: the built-in)"
    )
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--out", default="runs/openset")
    args = parser.parse_args(argv)
    env = _common.environment()
    command = ["eval", "openset", "--out", args.out, "--episodes", str(args.episodes)]
    command += ["--seed", str(args.seed), "--quiet"]
    command += ["--model", args.model] if args.model else []
    if spkid(command) != 0:
        raise SystemExit("spkid eval openset failed")
    markdown = (_common.REPO_ROOT / args.out / "openset.md").read_text()
    body = markdown.split("\n", 2)[2]  # the report's own title is replaced by the section's
    body += (
        f"\n\nThe curve of named right against strangers named over thresholds: "
        f"`{args.out}/openset.png`. CIs are over episodes, which share the corpus's few "
        "speakers: they do not cover which voices the test speakers happen to be."
    )
    name = resolve_model_path(args.model).parent.name  # the preset's folder
    _common.finish(
        args,
        f"openset_{name}",
        f"Open-set identification (`bench/bench_openset.py`): `{name}`",
        env,
        body,
    )


if __name__ == "__main__":
    main()

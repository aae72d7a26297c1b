"""Speaker identification in the browser: enrol people, then identify them live.

    .venv/bin/python apps/gradio_demo.py            # built-in model, http://127.0.0.1:7860

Flags: ``--model`` (a trained ``model.keras``; default: the built-in one), ``--gallery``
(where enrolled people are kept; default ``~/.local/share/keras-spkid/demo_gallery.npz``),
``--celebrities`` (a gallery from ``closest_celeb.py build``; default: built-in LibriSpeech
readers), ``--host`` (default 127.0.0.1; 0.0.0.0 to serve the network), ``--port``
(default 7860, or the next free one) and ``--share`` (a temporary public gradio.live link).
The page itself is :mod:`keras_spkid.app.ui`.
"""

from __future__ import annotations

import os
import sys

from keras_spkid.cli.args import new_parser, port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def build_parser():
    parser = new_parser(None, __doc__)
    parser.add_argument("--model", help="model .keras (default: the built-in model)")
    parser.add_argument(
        "--gallery",
        help="enrolled people's gallery file, created on the "
        "first enrolment (default: ~/.local/share/keras-spkid/demo_gallery.npz)",
    )
    parser.add_argument(
        "--celebrities",
        help="gallery searched by 'Closest celebrity', from "
        "'closest_celeb.py build' (default: built-in LibriSpeech readers)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--port", type=port, help="port, 1-65535 (default 7860 or the next free one)"
    )
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and TensorFlow's messages"
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from keras_spkid.errors import run_command

    def serve(args) -> int:
        import logging

        from keras_spkid.app.clips import clip_folder
        from keras_spkid.app.service import SpeakerService
        from keras_spkid.app.ui import build_demo, launch

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per page request
        service = SpeakerService.open(args.model, args.gallery, args.celebrities)
        service.warm_up()  # the first answer is then as fast as the others
        print(
            f"model {service.model.path}; {len(service.gallery)} people enrolled in "
            f"{service.gallery_path}",
            flush=True,
        )
        with clip_folder():  # uploaded and recorded clips, deleted when the demo stops
            launch(build_demo(service), args.host, args.port, args.share)
        return 0

    return run_command(serve, args, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())

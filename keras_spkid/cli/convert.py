"""``spkid convert campplus``: import a PyTorch CAM++ checkpoint as a Keras model.

    spkid convert campplus --checkpoint campplus_cn_en_common.pt --output DIR

writes ``DIR/model.keras`` (raw 16 kHz audio in, Kaldi fbank front end inside) and
``DIR/config.json``. torch is not needed: the ``.pt`` zip/pickle is read directly. A
checkpoint that does not fit (another architecture or size, truncated) ends with one
line naming the first mismatch, exit status 2, and nothing written.
"""

from __future__ import annotations


def add_convert_parser(subparsers) -> None:
    """Register ``convert`` and its sub-commands on an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "convert",
        help="import a pretrained checkpoint of another framework (CAM++ .pt) as .keras",
    )
    commands = parser.add_subparsers(dest="convert_command", required=True, metavar="WHAT")
    p = commands.add_parser(
        "campplus",
        help="3D-Speaker CAM++ state_dict (.pt, 80-band fbank, 192-d) to model.keras",
    )
    p.add_argument("--checkpoint", required=True, help="the PyTorch state_dict (.pt)")
    p.add_argument(
        "--out",
        "--output",
        dest="output",
        required=True,
        help="folder to write model.keras and config.json",
    )
    p.set_defaults(func=cmd_convert_campplus)


def cmd_convert_campplus(args) -> int:
    from keras_spkid.models.campplus_checkpoint import convert_campplus

    for path in convert_campplus(args.checkpoint, args.output):
        print(f"wrote {path}")
    return 0

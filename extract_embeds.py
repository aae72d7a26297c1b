"""Embed every audio file of a list or folder: see ``keras_spkid/cli/embed.py``."""

import sys

from keras_spkid.cli.embed import main

if __name__ == "__main__":
    sys.exit(main())

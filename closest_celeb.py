"""Build a speaker gallery and find the closest voices: see ``keras_spkid/cli/celeb.py``."""

import sys

from keras_spkid.cli.celeb import main

if __name__ == "__main__":
    sys.exit(main())

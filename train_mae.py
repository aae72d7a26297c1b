"""Thin entry point: see `python train_mae.py --help` and keras_spkid.cli.train."""

import sys

from keras_spkid.cli.train import mae_main

if __name__ == "__main__":
    sys.exit(mae_main())

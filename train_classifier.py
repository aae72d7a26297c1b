"""Thin entry point: see `python train_classifier.py --help` and keras_spkid.cli.train."""

import sys

from keras_spkid.cli.train import classifier_main

if __name__ == "__main__":
    sys.exit(classifier_main())

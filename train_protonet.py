"""Thin entry point: see `python train_protonet.py --help` and keras_spkid.cli.train."""

import sys

from keras_spkid.cli.train import protonet_main

if __name__ == "__main__":
    sys.exit(protonet_main())

#!/usr/bin/env bash
# Rebuild the demo's built-in "closest celebrity" gallery
# (keras_spkid/pretrained/default/gallery.npz): the 251 LibriSpeech readers of
# ../shared/data/librispeech_1utt (or $SPKID_DATA), embedded with the default model
# (the DEFAULT_PRESET of keras_spkid/inference/model_io.py). Run it whenever the default
# model changes (the demo refuses a gallery made with another model). About 20 s on 2 idle
# CPU cores with conv6, a few minutes with CAM++.
#
# Usage: recipes/default_gallery.sh [--data ROOT] [--model MODEL.keras] [--output GALLERY.npz]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source recipes/env.sh
exec $py -m keras_spkid.app.default_gallery "$@"

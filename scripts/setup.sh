#!/usr/bin/env bash
# Set up keras-spkid on a fresh Debian/Ubuntu machine: ffmpeg, a virtualenv in .venv,
# the pinned requirements and the package itself (editable). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# ffmpeg decodes m4a/webm and cuts downloads; Debian's chromium runs the browser tests of
# the Gradio demo (Playwright drives it; `playwright install` is never needed).
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
[ -n "${SPKID_NO_BROWSER:-}" ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt)"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
    done
fi
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "keras-spkid needs Python >= 3.11"'

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps -e .
echo "ready: .venv/bin/spkid --help"

# Sourced by the recipes: which Python environment runs them. In order:
#   1. $SPKID_PYTHON, if set (a python that has keras_spkid and its requirements);
#   2. the active environment: `python` on PATH (an activated venv, conda, or a pip
#      install) when it has keras_spkid and TensorFlow;
#   3. the repository's .venv (made by scripts/setup.sh).
# Defines $py (the python) and $spkid (the spkid command run by that python).
# Expects $repo, the repository root. Exports SPKID_DATA (default: ../shared/data beside it).
export SPKID_DATA="${SPKID_DATA:-$repo/../shared/data}"
_spkid_has_package() {
    "$1" -c 'import importlib.util as u, sys
sys.exit(not (u.find_spec("keras_spkid") and u.find_spec("tensorflow")))' 2>/dev/null
}
if [[ -n "${SPKID_PYTHON:-}" ]]; then
    py=$SPKID_PYTHON
elif command -v python >/dev/null && _spkid_has_package python; then
    py=$(command -v python)
elif [[ -x "$repo/.venv/bin/python" ]] && _spkid_has_package "$repo/.venv/bin/python"; then
    py=$repo/.venv/bin/python
else
    echo "error: no Python environment with keras_spkid and TensorFlow: activate one" \
        "(pip install -r requirements.txt && pip install -e .), set SPKID_PYTHON, or run" \
        "scripts/setup.sh" >&2
    exit 2
fi
spkid="$py -m keras_spkid.cli.main"

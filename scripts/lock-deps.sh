#!/usr/bin/env bash
# Refresh constraints.txt, the locked dependency set that the README's quick start and
# .ci/run install with (`pip install -c constraints.txt -e '.[dev]'`): a fresh venv takes
# what PyPI serves today for pyproject.toml's ranges, and its exact versions are written.
# Run it on purpose (a new dependency, an upgrade), then run the tests before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
"$work/venv/bin/pip" install -q -e '.[dev]'
{
  echo "# Locked dependency set: the exact versions CI tested. Refresh with scripts/lock-deps.sh."
  echo "# Made with $("$work/venv/bin/python" --version) on $(date -u +%Y-%m-%d)."
  "$work/venv/bin/pip" freeze --exclude-editable --all | grep -v -E '^(pip|setuptools|wheel)=='
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"

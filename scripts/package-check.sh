#!/usr/bin/env bash
# Release check, run by CI (.ci/run) and `make package`: build the sdist and the wheel as a
# release would, fail on any build warning, `twine check --strict` them, check their contents,
# install the wheel into a fresh virtualenv outside the checkout and run smoke commands there
# (scripts/package_check.py says what each check proves).
#
# Needs the project's .venv (scripts/setup.sh; build, twine and trove-classifiers come with the
# test extra), openssl, and the package index for the isolated build and the wheel's runtime
# dependencies. KEEP=DIR keeps the built sdist and wheel in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PACKAGE_PYTHON:-$repo/.venv/bin/python}
BASE_PY=${PYTHON:-python3.11}
command -v "$BASE_PY" >/dev/null || BASE_PY=python3

work=$(mktemp -d /tmp/trustwall-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
dist=$work/dist
t0=$SECONDS

fail() { echo "package-check: $*" >&2; exit 1; }

echo "package-check: build sdist, then the wheel from the sdist (isolated)"
# setuptools says "byte-compiling is disabled" when PYTHONDONTWRITEBYTECODE is set: that is this
# environment's choice, not a defect of the project, so the build runs without it.
start=$(date +%s%N)
env -u PYTHONDONTWRITEBYTECODE "$PY" -m build --outdir "$dist" "$repo" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; fail "python -m build failed"; }
build_ms=$(( ($(date +%s%N) - start) / 1000000 ))
# Any warning or deprecation from setuptools, build or the backend fails the release.
if grep -n -i -E 'warn|deprecat' "$work/build.log" >"$work/warnings"; then
  cat "$work/warnings" >&2
  fail "the build printed warnings (the lines above, of $(wc -l <"$work/build.log") in the build log)"
fi
echo "  ok    built in ${build_ms} ms without a warning"

echo "package-check: twine check --strict"
"$PY" -m twine --no-color check --strict "$dist"/* || fail "twine check failed"

echo "package-check: the artefacts"
"$PY" scripts/package_check.py dist "$dist"

echo "package-check: install the wheel into a fresh virtualenv outside the checkout"
start=$(date +%s%N)
"$BASE_PY" -m venv "$work/venv"
# pip's own chatter (e.g. about this machine's pip.conf) goes to a log shown on failure.
# --no-compile: byte-compiling the dependencies is most of the install time, and every module
# of the package is imported (so compiled) by the checks below anyway.
(cd "$work" && "$work/venv/bin/python" -m pip install --disable-pip-version-check --no-compile \
   "$dist"/*.whl >"$work/install.log" 2>&1) \
  || { cat "$work/install.log" >&2; fail "pip install of the wheel failed"; }
echo "  ok    installed in $(( ($(date +%s%N) - start) / 1000000 )) ms"

echo "package-check: the installed wheel"
# -I: neither the script's directory nor the environment's PYTHON* variables reach sys.path,
# so only the virtualenv's site-packages can provide trustwall.
(cd "$work" && "$work/venv/bin/python" -I "$repo/scripts/package_check.py" installed)

if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp "$dist"/* "$KEEP"/ && echo "package-check: artefacts kept in $KEEP"
fi
echo "package-check: ok ($((SECONDS - t0)) s)"

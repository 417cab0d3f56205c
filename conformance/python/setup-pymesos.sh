#!/usr/bin/env bash
# Creates a virtualenv holding an unmodified pymesos from PyPI.
#
# pymesos depends on http-parser, whose C extension does not build on Python 3.11; the package
# falls back to its own pure-Python parser when the extension is absent, so we install its
# Python files without building the extension.
set -euo pipefail
venv=${1:?usage: setup-pymesos.sh VENV_DIR}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pymesos, http_parser.http' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps pymesos==0.3.15 six addict
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: http-parser==0.9.0 -d "$tmp"
tar xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/http_parser"
cp "$tmp"/http-parser-0.9.0/http_parser/*.py "$site/http_parser/"
"$venv/bin/python" -c 'import pymesos, http_parser.http'

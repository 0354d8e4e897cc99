#!/usr/bin/env bash
# Creates the Python virtual environment the `otel_python` test sends spans from:
# the OpenTelemetry SDK and its OTLP/HTTP (protobuf) exporter, from PyPI.
# Usage: setup-venv.sh [VENV_DIR]   (default: <workspace>/target/otel-python)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${1:-${CARGO_TARGET_DIR:-$root/target}/otel-python}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt"
"$venv/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' 
echo "otel python venv ready: $venv"

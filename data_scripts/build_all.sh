#!/usr/bin/env bash
# Build every registered medbook dataset at one scale (default: small), cached under $MEDBOOK_HOME.
set -euo pipefail
scale="${1:-small}"
medbook data list
medbook data build --scale "$scale"

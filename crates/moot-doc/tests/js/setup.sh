#!/bin/sh
# Installs the pinned JS automerge for the round-trip test (tests/js_roundtrip.rs).
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund

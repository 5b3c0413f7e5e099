#!/usr/bin/env bash
# The test command (README, .ci/run): prepares everything the tests need from the
# project's own files, then runs them. Safe to rerun; each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

# rust-toolchain.toml pins rustc and lists wasm32-wasip2; this adds the target (and the
# pinned toolchain if missing) without upgrading anything.
rustup toolchain install

# Independent tools: GNU tar is on every Debian machine; bsdtar comes from
# libarchive-tools; the reference `age` and `minisign` CLIs decrypt ferry's parts and
# check its signatures; ssh-keygen makes an ssh-ed25519 recipient.
if ! command -v bsdtar >/dev/null || ! command -v age >/dev/null || ! command -v minisign >/dev/null || ! command -v ssh-keygen >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libarchive-tools age minisign openssh-client >/dev/null
fi

# Headless Chromium and its driver for the snapshots page's browser test (Selenium, in
# the venv below, drives them).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

# An independent Avro reader (fastavro) in a venv under target/.
if ! target/py/bin/python -c "import fastavro, cramjam, backports.zstd, jsonschema, pyarrow, duckdb, polars, aiosmtpd, selenium" 2>/dev/null; then
  python3 -m venv target/py
  target/py/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
fi
export FERRY_PYTHON="$PWD/target/py/bin/python"

# componentize-py (PyPI wheel with its binary; offline once installed) for the Python
# example plugin, in its own venv; the test caches the component it builds.
if ! target/componentize/bin/componentize-py --version >/dev/null 2>&1; then
  python3 -m venv target/componentize
  target/componentize/bin/pip install --quiet --disable-pip-version-check -r tests/py/componentize.txt
fi
export FERRY_COMPONENTIZE_PY="$PWD/target/componentize/bin/componentize-py"

# componentize-js (npm, pinned in the example's package.json; no install scripts, and the
# optional AOT step, which downloads, is not used) for the JavaScript example plugin.
if [ ! -f target/js/node_modules/@bytecodealliance/componentize-js/package.json ]; then
  mkdir -p target/js && cp examples/plugin-js-monthly/package.json target/js/
  (cd target/js && npm install --ignore-scripts --no-audit --no-fund --silent)
fi
export FERRY_JS_MODULES="$PWD/target/js"

# PostgreSQL and an S3 server on 127.0.0.1 for the tests that need them (stopped on exit).
source tests/servers.sh

# The encodings shared by host and kit (round trips, edge values, property tests), and
# the kit's own unit tests, run natively; the kit's wasm build is exercised by every
# integration test.
cargo test --locked -p ferry-wire --quiet
(cd plugins && cargo test --locked -p ferry-pdk --quiet)
# Plugins' unit tests on the kit's native mock host (feature `mock`, no wasm); the
# example shares the plugins' target directory.
(cd plugins && cargo test --locked -p ferry-pdk --features ferry-pdk/mock -p ferry-plugin-accounts -p ferry-plugin-attachments --quiet)
(cd examples/plugin-category-totals && cargo test --locked --quiet --target-dir ../../plugins/target)
(cd examples/plugin-monthly-activity && cargo test --locked --quiet --target-dir ../../plugins/target)

cargo test --locked --features test-hooks "$@"

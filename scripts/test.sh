#!/usr/bin/env bash
# The project's test command (README "Run the tests"): formatting, lints and
# the whole workspace's tests on this machine. Needs only cargo (Rust >= 1.85).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "=== cargo fmt --check"
cargo fmt --all -- --check
echo "=== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "=== cargo test"
cargo test --workspace --locked

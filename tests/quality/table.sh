#!/usr/bin/env bash
# The accuracy table on the real tiny pool (not in CI): every merger x LARV
# variant at the default lambda and at the lambda chosen on the validation split,
# reported on the test split (tests/quality/table.py; README "Accuracy on a real
# pool"). Extra arguments go to table.py, e.g. --tiers (the tier-value check on
# the validation split), --methods ta tsv, --jobs 1, --json results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/larv ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)"; }
pool=${LARV_POOL:-../shared/pools/tiny-real-8}
exec /usr/bin/python3 tests/quality/table.py --pool "$pool" --larv build/larv "$@"

#!/usr/bin/env bash
# promptcache next to GPTCache's similarity cache on one workload, in one run:
#   bash bench/peers/run.sh [build-dir]        (N=10000 by default)
# GPTCache runs from its source (../shared/peers/GPTCache, or $PEERS) with
# Debian's python3 packages, in its documented setup (sqlite + FAISS,
# SearchDistanceEvaluation, threshold 0.9) and the harness's trigram
# embedding; promptcache with its defaults (built-in embedder, calibrated
# match decision at a 1% false-hit target).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
peers=${PEERS:-$(cd .. && pwd)/shared/peers}
n=${N:-10000}
py=/usr/bin/python3  # Debian's: another python3 on PATH cannot see its packages
$py -c 'import numpy, faiss, sqlalchemy, cachetools' 2>/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3-numpy \
    python3-requests python3-cachetools python3-faiss python3-sqlalchemy >/dev/null
cmake --build "$build" --target peer_bench >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py bench/peers/workload.py --peers "$peers" --n "$n" --out "$work/workload.tsv"
echo "== promptcache (peer_bench)"
"$build/bench/peer_bench" --workload "$work/workload.tsv" --json "$work/promptcache.json"
echo "== GPTCache (gptcache_bench.py similar, tmpfs-free workdir: pays sqlite's fsyncs)"
PYTHONPATH="$peers/GPTCache" $py "$peers/gptcache_bench.py" similar --n "$n" \
  --workdir "$work/gptcache" --json "$work/gptcache.json"
$py - "$work/promptcache.json" "$work/gptcache.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
pb = {p["phase"]: p for p in b["phases"]}
print("\n| phase | promptcache ops/s | p50 / p99 us | hit / correct | GPTCache ops/s | p50 / p99 us | hit / correct |")
print("|---|---|---|---|---|---|---|")
for p in a["phases"]:
    q = pb.get(p["phase"], {})
    def cell(x):
        if not x:
            return "-", "-", "-"
        hc = "-" if p["phase"] == "put" else f"{x.get('hit_rate', 0):.1%} / {x.get('correct_rate', 0):.1%}"
        return f"{x['ops_per_s']:,.0f}", f"{x['p50_us']:,.0f} / {x['p99_us']:,.0f}", hc
    print("| {} | {} | {} | {} | {} | {} | {} |".format(p["phase"], *cell(p), *cell(q)))
PY

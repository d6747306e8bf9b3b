#!/usr/bin/env bash
# semantic_eval as a user runs it: every input error is a clear message and
# a non-zero exit; the default row is marked; --explain prints score,
# features and decision per pair; replays report correct and wrong hits
# separately; --fit writes a calibration the tool (and the library) loads.
# Usage: semantic_eval_test.sh BUILD_DIR [SHARED_DATA_DIR]
set -u
EVAL="$1/tools/semantic_eval"
DATA="${2:-}"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
passed=0
failed=0

# expect_fail NAME PATTERN ARGS...: exits non-zero, stderr matches PATTERN.
expect_fail() {
  local name="$1" pattern="$2"
  shift 2
  "$EVAL" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qiE "$pattern" "$T/err"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $rc; stderr: $(head -c 400 "$T/err")"
  fi
}
# expect_ok NAME PATTERN ARGS...: exits 0, stdout matches PATTERN.
expect_ok() {
  local name="$1" pattern="$2"
  shift 2
  "$EVAL" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -eq 0 ] && grep -qE -- "$pattern" "$T/out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $rc; stdout: $(head -c 400 "$T/out") stderr: $(head -c 400 "$T/err")"
  fi
}

printf '{"a": "how do i reset my password", "b": "How can I reset my password?", "label": 1}\n{"a": "convert 20 GBP to JPY", "b": "convert 20 JPY to GBP", "label": 0}\n' >"$T/good.jsonl"
printf '{"a": "x y", "b": "x z", "is_duplicate": 1}\n' >"$T/wrongkey.jsonl"
printf '{"a": "x y", "b": "x z", "label": 2}\n' >"$T/badlabel.jsonl"
printf '{"a": "x y", "b": "x z", "label": 1}\nnot json\nnot json either\n{"a": "p", "b": "q", "label": 0}\n' >"$T/half.jsonl"
printf 'not json\nnot json\n{"a": "p", "b": "q", "label": 0}\n' >"$T/mostly_bad.jsonl"
: >"$T/empty.tsv"
printf 'id\ta\tb\tlabel\n1\tone two\tone three\t7\n' >"$T/badlabel.tsv"
mkdir -p "$T/bank"
printf 'text,category\n"a query\nover two lines",card_arrival\nwhen will my card come,card_arrival\n' >"$T/bank/train.csv"
printf 'text,category\nwhen does my card arrive,card_arrival\n' >"$T/bank/test.csv"

expect_fail "no input" "no input" --step 0.1
expect_fail "unknown label key" "label.*is_duplicate|is_duplicate.*label" --pairs-jsonl "$T/wrongkey.jsonl"
expect_ok "label key option" "hit rate" --pairs-jsonl "$T/wrongkey.jsonl" --label-key is_duplicate --threshold-sweep
expect_fail "label not 0/1 (jsonl)" "label" --pairs-jsonl "$T/badlabel.jsonl"
expect_fail "label not 0/1 (tsv)" "label" --pairs-tsv "$T/badlabel.tsv"
expect_fail "mostly malformed" "malformed" --pairs-jsonl "$T/mostly_bad.jsonl"
"$EVAL" --pairs-jsonl "$T/half.jsonl" >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "2 malformed" "$T/err"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL malformed lines counted: $(cat "$T/err")"; fi
expect_fail "empty file" "no records|empty" --pairs-tsv "$T/empty.tsv"
expect_fail "missing file" "cannot|no such|not found" --pairs-tsv "$T/nope.tsv"
expect_fail "directory as file" "directory" --pairs-tsv "$T"
expect_fail "bad embedder" "embedder" --embedder bogus --pairs-jsonl "$T/good.jsonl"
expect_fail "zero step" "step" --step 0 --pairs-jsonl "$T/good.jsonl"
expect_fail "negative step" "step" --step -0.1 --pairs-jsonl "$T/good.jsonl"
expect_fail "from above to" "from" --from 0.9 --to 0.5 --pairs-jsonl "$T/good.jsonl"
expect_fail "unwritable json" "cannot write" --json /nonexistent/dir/out.json --pairs-jsonl "$T/good.jsonl"
expect_fail "bad target" "target" --target 0 --pairs-jsonl "$T/good.jsonl"
expect_fail "bad calibration" "calibration" --calibration "$T/good.jsonl" --pairs-jsonl "$T/good.jsonl"

# The default row is marked; thresholds have four digits.
expect_ok "default row marked" "0\.010:0\.[0-9]{4} .*<- default" --pairs-jsonl "$T/good.jsonl"
# --explain: label, similarity, score, decision, features, texts.
expect_ok "explain veto" $'^0\t.*veto: .*cosine=.*cover_min=' --pairs-jsonl "$T/good.jsonl" --explain
expect_ok "explain score" $'^1\t[0-9.]+\t[0-9.]+\t(serve|refuse)\t' --pairs-jsonl "$T/good.jsonl" --explain
# Replays: correct and wrong hits over queries, in separate columns; a
# quoted newline inside a CSV field is part of the text.
expect_ok "replay columns" "correct hits +wrong hits +oos served" --banking77 "$T/bank"
expect_ok "csv quoted newline" "a query" --banking77 "$T/bank" --explain
# --json is written.
"$EVAL" --pairs-jsonl "$T/good.jsonl" --json "$T/out.json" >/dev/null 2>&1 && grep -q '"default": true' "$T/out.json" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL json output"; }

# --fit: a calibration that loads and reproduces byte for byte.
if [ -n "$DATA" ] && [ -f "$DATA/pairs/paws_wiki_dev/dev.tsv" ]; then
  expect_ok "fit" "fitted" --pairs-tsv "$DATA/pairs/paws_wiki_dev/dev.tsv" --fit "$T/cal1.json"
  "$EVAL" --pairs-tsv "$DATA/pairs/paws_wiki_dev/dev.tsv" --fit "$T/cal2.json" >/dev/null 2>&1
  if cmp -s "$T/cal1.json" "$T/cal2.json"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL fit is not reproducible"; fi
  expect_ok "fitted calibration loads" "<- default" --pairs-tsv "$DATA/pairs/paws_wiki_dev/dev.tsv" --calibration "$T/cal1.json" --split eval
fi

echo "semantic_eval: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

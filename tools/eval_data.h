// Readers of the labeled data sets used by semantic_eval (see
// ../shared/data/README.md): sentence pairs labeled paraphrase or not, and
// intent-labeled queries replayed as a stream (store one split, query with
// another).
//
// Every reader returns an error instead of exiting or throwing: a missing or
// unreadable file, a file without records, a label that is not a label (a
// sign of the wrong file or column) and a file whose shape is wrong are
// errors naming the file and the problem. Single bad lines (wrong field count,
// invalid JSON, missing or non-string text) are skipped and counted in the
// ReadReport, unless more than half of the lines are bad, which is an error
// too. Blank lines are ignored, CRLF line endings and a UTF-8 byte order mark
// are accepted, and text is passed through unchanged (UTF-8 included).
#ifndef PROMPTCACHE_TOOLS_EVAL_DATA_H_
#define PROMPTCACHE_TOOLS_EVAL_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promptcache::eval {

struct LabeledPair {
  std::string a, b;
  bool positive = false;
};

// A query of an intent data set; intent "oos" = out of scope (CLINC150).
struct IntentQuery {
  std::string text, intent;
};

inline constexpr char kOutOfScopeIntent[] = "oos";

// What a reader skipped.
struct ReadReport {
  int64_t records = 0;    // records read successfully
  int64_t malformed = 0;  // lines/records skipped as malformed
  // The first few malformed ones (kMaxMalformedExamples), e.g.
  // "line 17: expected 4 tab-separated fields, got 2".
  std::vector<std::string> malformed_examples;
};

inline constexpr int kMaxMalformedExamples = 5;

struct PairSet {
  std::vector<LabeledPair> pairs;
  ReadReport report;
};

struct IntentSet {
  std::vector<IntentQuery> stored, queries;
  ReadReport report;  // of all the files or lists read
};

// "8000 records" or "8000 records, 2 malformed skipped (line 3: ...; ...)",
// for a tool's log.
std::string ReportSummary(const ReadReport& report);

// PAWS-style TSV: id<TAB>a<TAB>b<TAB>label, label 0 or 1 (1 = paraphrase).
// An optional header line (the first line, if its first field is "id" and its
// label field is not 0/1) is skipped. Text may not contain tabs (no quoting).
absl::StatusOr<PairSet> ReadPairsTsv(const std::string& path);

// JSON lines {"a": ..., "b": ..., <label_key>: 0|1|true|false}. A line
// without the label key is an error naming the keys it has.
absl::StatusOr<PairSet> ReadPairsJsonl(const std::string& path,
                                       const std::string& label_key = "label");

// GPTCache mock_data.json: an array of {"origin", "similar"}; each item gives
// a positive (origin, similar) and a negative (origin, the next good item's
// similar, wrapping). Needs at least 2 good items. report.records counts
// items (pairs.size() is twice that).
absl::StatusOr<PairSet> ReadGptCacheMock(const std::string& path);

// Banking77: DIR/train.csv (stored) and DIR/test.csv (queries), CSV with the
// header "text,category". Rows without exactly 2 fields, or with an empty
// field, are malformed; malformed examples name the file ("test.csv line 9:
// ...").
absl::StatusOr<IntentSet> ReadBanking77(const std::string& dir);

// CLINC150 data_full.json: an object of lists of [text, intent]; stored =
// "train", queries = "test" + "oos_test" (intent "oos"). "train" and "test"
// are required, "oos_test" is optional. Malformed examples name the list and
// index ("test"[12]: ...).
absl::StatusOr<IntentSet> ReadClinc150(const std::string& path);

// RFC 4180 CSV: records end at LF or CRLF; a field starting with a quote may
// contain commas, newlines (a quoted CRLF becomes LF) and "" for a quote; a
// quote inside an unquoted field is taken literally. Empty lines are skipped.
// Errors (naming the line): an unterminated quoted field (the line where the
// field began) and text after a closing quote other than spaces.
absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(
    absl::string_view text);

// The bytes of a file. NotFound / PermissionDenied / ... naming the path when
// it cannot be opened or read; InvalidArgument for a directory.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace promptcache::eval

#endif  // PROMPTCACHE_TOOLS_EVAL_DATA_H_

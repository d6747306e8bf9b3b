// Readers of labeled evaluation data (PAWS TSV, GPTCache mock JSON,
// Banking77 CSV, CLINC150 JSON) with the checks and error messages each
// format needs. Long (~680 lines) because every reader reports bad input
// precisely (file, line, field); they share the CSV and JSON helpers here.
#include "eval_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace promptcache::eval {
namespace {

using nlohmann::json;

constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";

absl::string_view StripBom(absl::string_view text) {
  absl::ConsumePrefix(&text, kUtf8Bom);
  return text;
}

bool IsBlank(absl::string_view s) {
  return absl::StripAsciiWhitespace(s).empty();
}

// `s` cut after about 60 bytes (at a UTF-8 character boundary).
std::string Truncate(absl::string_view s) {
  constexpr size_t kMax = 60;
  if (s.size() <= kMax) return std::string(s);
  size_t n = kMax;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(s.substr(0, n), "...");
}

// `s` for an error message: quoted, control characters escaped, truncated.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (const char c : Truncate(s)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// A JSON value for an error message, as JSON (never throws on bad UTF-8).
std::string Show(const json& j) {
  return Truncate(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

// The kind of a JSON value with an article: "an object", "a string", "null".
std::string Kind(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_object() || j.is_array()) return absl::StrCat("an ", j.type_name());
  return absl::StrCat("a ", j.type_name());
}

// "\"a\", \"b\"" (at most 10), or "no keys".
std::string KeyList(const json& object) {
  if (object.empty()) return "no keys";
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (keys.size() == 10) {
      keys.push_back(absl::StrCat("... (", object.size(), " keys)"));
      break;
    }
    keys.push_back(Quote(it.key()));
  }
  return absl::StrCat("keys ", absl::StrJoin(keys, ", "));
}

// nlohmann's exception text without the "[json.exception.parse_error.101] "
// prefix.
std::string JsonError(const std::exception& e) {
  absl::string_view what = e.what();
  const size_t end = what.find("] ");
  if (absl::StartsWith(what, "[json.exception.") &&
      end != absl::string_view::npos) {
    what.remove_prefix(end + 2);
  }
  return std::string(what);
}

// Parses a whole JSON document; the error names `path`.
absl::StatusOr<json> ParseJsonFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  const absl::string_view body = StripBom(*text);
  if (IsBlank(body)) return absl::InvalidArgumentError(path + " is empty");
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": invalid JSON: ", JsonError(e)));
  }
}

// Calls `fn(line_number, line)` for each line of `text` (1-based, without
// the line ending, LF or CRLF); stops at the first error.
template <typename Fn>
absl::Status ForEachLine(absl::string_view text, Fn fn) {
  int64_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    text.remove_prefix(end == absl::string_view::npos ? text.size() : end + 1);
    absl::ConsumeSuffix(&line, "\r");
    absl::Status status = fn(number, line);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Counts good and malformed records of one file (or one list of a file).
class Tally {
 public:
  // Examples in the report start with `report_prefix` (e.g. the file name
  // when a report covers several files).
  explicit Tally(ReadReport* report, std::string report_prefix = "")
      : report_(report), report_prefix_(std::move(report_prefix)) {}

  void Good() {
    ++good_;
    ++report_->records;
  }

  void Bad(std::string what) {
    ++bad_;
    ++report_->malformed;
    if (report_->malformed_examples.size() < kMaxMalformedExamples) {
      report_->malformed_examples.push_back(report_prefix_ + what);
    }
    if (examples_.size() < kMaxMalformedExamples) {
      examples_.push_back(std::move(what));
    }
  }

  // An error when there are no records, none is good, or more than half are
  // malformed. `source` names the file (and list), `unit` what was counted.
  absl::Status Check(absl::string_view source, absl::string_view unit) const {
    if (good_ == 0 && bad_ == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " has no records"));
    }
    if (good_ > 0 && bad_ <= good_) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": ", bad_, " of ", good_ + bad_, " ", unit, " are malformed (",
        good_ == 0 ? "none is usable" : "more than half",
        "; wrong file or format?): ", absl::StrJoin(examples_, "; "),
        bad_ > static_cast<int64_t>(examples_.size()) ? "; ..." : ""));
  }

 private:
  ReadReport* report_;
  std::string report_prefix_;
  int64_t good_ = 0;
  int64_t bad_ = 0;
  std::vector<std::string> examples_;
};

// Runs a reader, turning any exception that escapes it into an error.
template <typename T, typename Fn>
absl::StatusOr<T> NoThrow(const std::string& what, Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(what, ": unexpected error: ", e.what()));
  }
}

// Takes `object[key]` into `*out` if it is a non-blank string; otherwise
// returns what is wrong.
std::string TakeText(const json& object, const char* key, std::string* out) {
  const auto it = object.find(key);
  if (it == object.end()) {
    return absl::StrCat("no \"", key, "\" (the object has ", KeyList(object),
                        ")");
  }
  if (!it->is_string()) {
    return absl::StrCat("\"", key, "\" is ", Kind(*it), ", not a string");
  }
  const auto& text = it->get_ref<const std::string&>();
  if (IsBlank(text)) return absl::StrCat("\"", key, "\" is empty");
  *out = text;
  return "";
}

struct CsvRecord {
  int64_t line;  // where the record began
  std::vector<std::string> fields;
};

// True at a line ending: LF, CRLF, or a CR that ends the text.
bool AtLineEnd(absl::string_view text, size_t i) {
  return text[i] == '\n' ||
         (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] == '\n'));
}

absl::StatusOr<std::vector<CsvRecord>> ParseCsvRecords(absl::string_view text) {
  text = StripBom(text);
  std::vector<CsvRecord> out;
  const size_t n = text.size();
  int64_t line = 1;
  size_t i = 0;
  // Consumes a line ending at i, if any.
  auto end_line = [&] {
    if (i < n && text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') ++i;
    ++line;
  };
  while (i < n) {
    if (AtLineEnd(text, i)) {  // an empty line
      end_line();
      continue;
    }
    CsvRecord record{line, {}};
    while (true) {
      std::string field;
      if (text[i] == '"') {
        const int64_t start_line = line;
        bool closed = false;
        ++i;
        while (i < n) {
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\r' && i + 1 < n && text[i + 1] == '\n') {
            field.push_back('\n');
            i += 2;
            ++line;
            continue;
          }
          if (c == '\n') ++line;
          field.push_back(c);
          ++i;
        }
        if (!closed) {
          return absl::InvalidArgumentError(absl::StrCat(
              "unterminated quoted field starting on line ", start_line));
        }
        while (i < n && (text[i] == ' ' || text[i] == '\t')) ++i;
        if (i < n && text[i] != ',' && !AtLineEnd(text, i)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "line ", line,
              ": text after the closing quote of a quoted field (a quote "
              "inside a quoted field is written as \"\")"));
        }
      } else {
        while (i < n && text[i] != ',' && !AtLineEnd(text, i)) {
          field.push_back(text[i]);
          ++i;
        }
      }
      record.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        if (i == n) record.fields.emplace_back();  // "a," at the very end
        if (i < n) continue;
      }
      break;
    }
    end_line();
    out.push_back(std::move(record));
  }
  return out;
}

// One Banking77-style CSV file ("text,category") into `out`.
absl::Status ReadIntentCsv(const std::string& path, const std::string& name,
                           std::vector<IntentQuery>* out, ReadReport* report) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<CsvRecord>> records = ParseCsvRecords(*text);
  if (!records.ok()) {
    return absl::Status(records.status().code(),
                        absl::StrCat(path, ": ", records.status().message()));
  }
  Tally tally(report, name + " ");
  bool header = true;
  for (CsvRecord& r : *records) {
    if (r.fields.size() == 1 && IsBlank(r.fields[0])) continue;
    if (header) {
      header = false;
      const bool ok = r.fields.size() == 2 &&
                      absl::EqualsIgnoreCase(
                          absl::StripAsciiWhitespace(r.fields[0]), "text") &&
                      absl::EqualsIgnoreCase(
                          absl::StripAsciiWhitespace(r.fields[1]), "category");
      if (!ok) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, " line ", r.line,
                         ": expected the header \"text,category\", got ",
                         Quote(absl::StrJoin(r.fields, ","))));
      }
      continue;
    }
    if (r.fields.size() != 2) {
      tally.Bad(absl::StrCat("line ", r.line,
                             ": expected 2 comma-separated fields (text, "
                             "category), got ",
                             r.fields.size()));
    } else if (IsBlank(r.fields[0])) {
      tally.Bad(absl::StrCat("line ", r.line, ": empty text"));
    } else if (IsBlank(r.fields[1])) {
      tally.Bad(absl::StrCat("line ", r.line, ": empty category"));
    } else {
      out->push_back({std::move(r.fields[0]), std::move(r.fields[1])});
      tally.Good();
    }
  }
  return tally.Check(path, "rows");
}

// One CLINC150 list of [text, intent] rows into `out`; `intent` replaces the
// rows' intents when not empty.
absl::Status ReadClincList(const std::string& path, const json& root,
                           const std::string& name, const std::string& intent,
                           std::vector<IntentQuery>* out, ReadReport* report) {
  const json& list = root.at(name);
  const std::string where = absl::StrCat("\"", name, "\"");
  if (!list.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", where, " is ", Kind(list),
                     ", expected a list of [text, intent]"));
  }
  Tally tally(report);
  for (size_t i = 0; i < list.size(); ++i) {
    const json& row = list[i];
    const std::string at = absl::StrCat(where, "[", i, "]: ");
    if (!row.is_array() || row.size() != 2) {
      tally.Bad(
          absl::StrCat(at, "expected a [text, intent] pair, got ", Show(row)));
    } else if (!row[0].is_string() || !row[1].is_string()) {
      tally.Bad(
          absl::StrCat(at, "text and intent must be strings, got ", Show(row)));
    } else if (IsBlank(row[0].get_ref<const std::string&>())) {
      tally.Bad(absl::StrCat(at, "empty text"));
    } else if (IsBlank(row[1].get_ref<const std::string&>())) {
      tally.Bad(absl::StrCat(at, "empty intent"));
    } else {
      out->push_back({row[0].get<std::string>(),
                      intent.empty() ? row[1].get<std::string>() : intent});
      tally.Good();
    }
  }
  return tally.Check(absl::StrCat(path, ": ", where), "rows");
}

}  // namespace

std::string ReportSummary(const ReadReport& report) {
  std::string out = absl::StrCat(report.records, " records");
  if (report.malformed > 0) {
    absl::StrAppend(&out, ", ", report.malformed, " malformed skipped (",
                    absl::StrJoin(report.malformed_examples, "; "),
                    report.malformed > static_cast<int64_t>(
                                           report.malformed_examples.size())
                        ? "; ..."
                        : "",
                    ")");
  }
  return out;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no file name given");
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return absl::ErrnoToStatus(errno, "cannot open " + path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::ErrnoToStatus(errno, "cannot stat " + path);
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(path + " is a directory, not a file");
  }
  std::string out;
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    out.reserve(static_cast<size_t>(st.st_size));
  }
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "cannot read " + path);
    }
    if (got == 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(
    absl::string_view text) {
  absl::StatusOr<std::vector<CsvRecord>> records = ParseCsvRecords(text);
  if (!records.ok()) return records.status();
  std::vector<std::vector<std::string>> out;
  out.reserve(records->size());
  for (CsvRecord& r : *records) out.push_back(std::move(r.fields));
  return out;
}

absl::StatusOr<PairSet> ReadPairsTsv(const std::string& path) {
  return NoThrow<PairSet>(path, [&]() -> absl::StatusOr<PairSet> {
    absl::StatusOr<std::string> text = ReadWholeFile(path);
    if (!text.ok()) return text.status();
    PairSet out;
    Tally tally(&out.report);
    bool first = true;
    absl::Status status = ForEachLine(
        StripBom(*text),
        [&](int64_t number, absl::string_view line) -> absl::Status {
          if (IsBlank(line)) return absl::OkStatus();
          const std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
          const bool is_first = first;
          first = false;
          const auto is_label = [](absl::string_view s) {
            s = absl::StripAsciiWhitespace(s);
            return s == "0" || s == "1";
          };
          if (is_first && absl::StripAsciiWhitespace(f[0]) == "id" &&
              (f.size() < 4 || !is_label(f[3]))) {
            return absl::OkStatus();  // the header
          }
          if (f.size() != 4) {
            tally.Bad(absl::StrCat("line ", number,
                                   ": expected 4 tab-separated fields, got ",
                                   f.size()));
            return absl::OkStatus();
          }
          if (!is_label(f[3])) {
            return absl::InvalidArgumentError(absl::StrCat(
                path, " line ", number, ": label ", Quote(f[3]),
                " is not 0 or 1 (expected id<TAB>a<TAB>b<TAB>label)"));
          }
          if (IsBlank(f[1]) || IsBlank(f[2])) {
            tally.Bad(absl::StrCat("line ", number, ": empty text in field ",
                                   IsBlank(f[1]) ? 2 : 3));
            return absl::OkStatus();
          }
          out.pairs.push_back({std::string(f[1]), std::string(f[2]),
                               absl::StripAsciiWhitespace(f[3]) == "1"});
          tally.Good();
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    status = tally.Check(path, "lines");
    if (!status.ok()) return status;
    return out;
  });
}

absl::StatusOr<PairSet> ReadPairsJsonl(const std::string& path,
                                       const std::string& label_key) {
  return NoThrow<PairSet>(path, [&]() -> absl::StatusOr<PairSet> {
    absl::StatusOr<std::string> text = ReadWholeFile(path);
    if (!text.ok()) return text.status();
    PairSet out;
    Tally tally(&out.report);
    absl::Status status = ForEachLine(
        StripBom(*text),
        [&](int64_t number, absl::string_view line) -> absl::Status {
          if (IsBlank(line)) return absl::OkStatus();
          const std::string at = absl::StrCat("line ", number, ": ");
          json j;
          try {
            j = json::parse(line.begin(), line.end());
          } catch (const json::exception& e) {
            // One line: "parse error at line 1, column 9: ..." is told as
            // "invalid JSON at column 9: ...".
            std::string error = JsonError(e);
            absl::string_view rest = error;
            if (absl::ConsumePrefix(&rest, "parse error at line 1, ")) {
              error = absl::StrCat(" at ", rest);
            } else {
              error = absl::StrCat(": ", error);
            }
            tally.Bad(absl::StrCat(at, "invalid JSON", error));
            return absl::OkStatus();
          }
          if (!j.is_object()) {
            tally.Bad(
                absl::StrCat(at, "expected a JSON object, got ", Kind(j)));
            return absl::OkStatus();
          }
          LabeledPair pair;
          std::string problem = TakeText(j, "a", &pair.a);
          if (problem.empty()) problem = TakeText(j, "b", &pair.b);
          if (!problem.empty()) {
            tally.Bad(at + problem);
            return absl::OkStatus();
          }
          const auto label = j.find(label_key);
          if (label == j.end()) {
            return absl::InvalidArgumentError(absl::StrCat(
                path, " ", at, "no label key \"", label_key,
                "\"; the line has ", KeyList(j),
                " (if the label is under another key, pass that key as the "
                "label key)"));
          }
          if (label->is_boolean()) {
            pair.positive = label->get<bool>();
          } else if (label->is_number_integer() &&
                     (*label == 0 || *label == 1)) {
            pair.positive = *label == 1;
          } else {
            return absl::InvalidArgumentError(
                absl::StrCat(path, " ", at, "label \"", label_key, "\" is ",
                             Show(*label), ", expected 0, 1, true or false"));
          }
          out.pairs.push_back(std::move(pair));
          tally.Good();
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    status = tally.Check(path, "lines");
    if (!status.ok()) return status;
    return out;
  });
}

absl::StatusOr<PairSet> ReadGptCacheMock(const std::string& path) {
  return NoThrow<PairSet>(path, [&]() -> absl::StatusOr<PairSet> {
    absl::StatusOr<json> j = ParseJsonFile(path);
    if (!j.ok()) return j.status();
    if (!j->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path,
          ": expected a JSON array of {\"origin\", \"similar\"} objects, "
          "got ",
          j->is_object() ? absl::StrCat("an object with ", KeyList(*j))
                         : Kind(*j)));
    }
    PairSet out;
    Tally tally(&out.report);
    std::vector<std::pair<std::string, std::string>> items;
    for (size_t i = 0; i < j->size(); ++i) {
      const json& item = (*j)[i];
      const std::string at = absl::StrCat("[", i, "]: ");
      if (!item.is_object()) {
        tally.Bad(absl::StrCat(at, "expected an object, got ", Kind(item)));
        continue;
      }
      std::string origin, similar;
      std::string problem = TakeText(item, "origin", &origin);
      if (problem.empty()) problem = TakeText(item, "similar", &similar);
      if (!problem.empty()) {
        tally.Bad(at + problem);
        continue;
      }
      items.emplace_back(std::move(origin), std::move(similar));
      tally.Good();
    }
    absl::Status status = tally.Check(path, "items");
    if (!status.ok()) return status;
    if (items.size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       ": needs at least 2 items to make negative "
                       "pairs, has 1"));
    }
    out.pairs.reserve(2 * items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      out.pairs.push_back({items[i].first, items[i].second, true});
      // A negative: this origin against the next item's rewrite.
      out.pairs.push_back(
          {items[i].first, items[(i + 1) % items.size()].second, false});
    }
    return out;
  });
}

absl::StatusOr<IntentSet> ReadBanking77(const std::string& dir) {
  return NoThrow<IntentSet>(dir, [&]() -> absl::StatusOr<IntentSet> {
    if (dir.empty()) return absl::InvalidArgumentError("no directory given");
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
      return absl::ErrnoToStatus(errno, "cannot open directory " + dir);
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          dir +
          " is not a directory (expected the Banking77 directory with "
          "train.csv and test.csv)");
    }
    const std::filesystem::path base(dir);
    IntentSet out;
    absl::Status status = ReadIntentCsv((base / "train.csv").string(),
                                        "train.csv", &out.stored, &out.report);
    if (!status.ok()) return status;
    status = ReadIntentCsv((base / "test.csv").string(), "test.csv",
                           &out.queries, &out.report);
    if (!status.ok()) return status;
    return out;
  });
}

absl::StatusOr<IntentSet> ReadClinc150(const std::string& path) {
  return NoThrow<IntentSet>(path, [&]() -> absl::StatusOr<IntentSet> {
    absl::StatusOr<json> j = ParseJsonFile(path);
    if (!j.ok()) return j.status();
    if (!j->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path,
          ": expected a JSON object with \"train\" and \"test\" lists "
          "of [text, intent], got ",
          Kind(*j)));
    }
    std::vector<std::string> missing;
    for (const char* key : {"train", "test"}) {
      if (!j->contains(key)) missing.push_back(absl::StrCat("\"", key, "\""));
    }
    if (!missing.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no ", absl::StrJoin(missing, " or "),
                       " list (the object has ", KeyList(*j),
                       "); expected CLINC150 data_full.json"));
    }
    IntentSet out;
    absl::Status status =
        ReadClincList(path, *j, "train", "", &out.stored, &out.report);
    if (!status.ok()) return status;
    status = ReadClincList(path, *j, "test", "", &out.queries, &out.report);
    if (!status.ok()) return status;
    if (j->contains("oos_test") &&
        !(j->at("oos_test").is_array() && j->at("oos_test").empty())) {
      status = ReadClincList(path, *j, "oos_test", kOutOfScopeIntent,
                             &out.queries, &out.report);
      if (!status.ok()) return status;
    }
    return out;
  });
}

}  // namespace promptcache::eval

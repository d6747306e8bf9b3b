// The Hugging Face tokenizer.json pipeline that Model2Vec models need:
// normalizers, pre-tokenizers, the WordPiece, WordLevel, Unigram and BPE
// models, and added tokens. Long (~1,350 lines) because it is one pipeline
// read from one file format: each stage is a small class behind the
// interface in tokenizer.h, and the stages share the JSON readers here.
#include "embed/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "embed/unicode_data.h"
#include "nlohmann/json.hpp"

namespace promptcache::internal {

using json = nlohmann::json;

// ---------------------------------------------------------------- ByteTrie

// The root's slot is marked taken with a check no node id can match.
constexpr int32_t kRootCheck = -2;

ByteTrie::ByteTrie() : build_(1), units_(257) { units_[0].check = kRootCheck; }

void ByteTrie::Insert(absl::string_view key, int32_t value) {
  int32_t node = kRoot;
  for (char c : key) {
    const auto byte = static_cast<uint8_t>(c);
    auto& kids = build_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(),
                               std::make_pair(byte, int32_t{0}));
    if (it != kids.end() && it->first == byte) {
      node = it->second;
      continue;
    }
    const auto next = static_cast<int32_t>(build_.size());
    kids.insert(it, {byte, next});
    build_.emplace_back();  // Invalidates `kids`; not used after this.
    node = next;
  }
  build_[node].value = value;
}

void ByteTrie::Freeze() {
  // Breadth first: place each node's children at the lowest base where all
  // their slots are free. A list of the free slots keeps the search from
  // rescanning the packed front of the array.
  std::vector<Unit> units;
  std::vector<int32_t> next_free, prev_free;
  int32_t head = -1;  // First free slot.
  int32_t tail = -1;
  auto grow = [&](size_t size) {
    const size_t old = units.size();
    units.resize(size);
    next_free.resize(size, -1);
    prev_free.resize(size, -1);
    for (size_t i = std::max<size_t>(old, 1); i < size; ++i) {
      const auto cell = static_cast<int32_t>(i);
      prev_free[cell] = tail;
      if (tail >= 0) {
        next_free[tail] = cell;
      } else {
        head = cell;
      }
      tail = cell;
    }
  };
  auto take = [&](int32_t cell) {
    if (prev_free[cell] >= 0) {
      next_free[prev_free[cell]] = next_free[cell];
    } else {
      head = next_free[cell];
    }
    if (next_free[cell] >= 0) {
      prev_free[next_free[cell]] = prev_free[cell];
    } else {
      tail = prev_free[cell];
    }
  };
  grow(build_.size() + 512);
  units[0].check = kRootCheck;  // Slot 0 is the root's and never free.
  std::vector<int32_t> slot_of(build_.size(), kNone);
  slot_of[0] = 0;
  size_t used = 257;
  std::vector<int32_t> queue = {0};
  for (size_t q = 0; q < queue.size(); ++q) {
    const int32_t node = queue[q];
    const int32_t slot = slot_of[node];
    units[slot].value = build_[node].value;
    const auto& kids = build_[node].children;
    if (kids.empty()) continue;  // No slot checks back to a leaf.
    size_t base = 0;
    for (int32_t cell = head;; cell = next_free[cell]) {
      if (cell < 0 || static_cast<size_t>(cell) + 256 >= units.size()) {
        // Past the free cells that can be tested: make room and go on from
        // the first new cell.
        const size_t from = units.size();
        grow(units.size() * 2 + 512);
        if (cell < 0) cell = static_cast<int32_t>(from);
      }
      if (static_cast<size_t>(cell) <= kids[0].first) continue;
      base = cell - kids[0].first;
      bool fits = true;
      for (size_t k = 1; k < kids.size(); ++k) {
        if (units[base + kids[k].first].check != kNone) {
          fits = false;
          break;
        }
      }
      if (fits) break;
    }
    units[slot].base = static_cast<int32_t>(base);
    for (const auto& [byte, child] : kids) {
      const auto cell = static_cast<int32_t>(base + byte);
      units[cell].check = slot;
      take(cell);
      slot_of[child] = cell;
      queue.push_back(child);
    }
    used = std::max(used, base + 256);
  }
  units.resize(used);
  units_ = std::move(units);
  build_.clear();
  build_.shrink_to_fit();
}

int32_t ByteTrie::Find(absl::string_view key) const {
  int32_t node = kRoot;
  for (char c : key) {
    node = Child(node, static_cast<uint8_t>(c));
    if (node == kNone) return kNone;
  }
  return node;
}

namespace {

// --------------------------------------------------------- JSON accessors

absl::Status Bad(absl::string_view what, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", message));
}

absl::Status Unsupported(absl::string_view what, absl::string_view message) {
  return absl::UnimplementedError(absl::StrCat(what, ": ", message));
}

bool GetBool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string GetString(const json& j, const char* key,
                      const std::string& fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::string TypeOf(const json& j) { return GetString(j, "type", ""); }

// ------------------------------------------------------------ Normalizers

}  // namespace

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `*text`; `scratch` is a spare buffer to swap with.
  // `*origin` counts the leading bytes of `*text` that derive from the
  // first character of the input: the reference prepends Metaspace's "first"
  // marker only while the text still starts there, so each step keeps the
  // count up to date.
  virtual void Apply(std::string* text, std::string* scratch,
                     size_t* origin) const = 0;
};

namespace {

class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean, bool chinese, bool strip, bool lower)
      : clean_(clean), chinese_(chinese), strip_(strip), lower_(lower) {}

  // The four steps are per-code-point maps, so one pass does them all in
  // the reference order: clean, pad CJK, strip accents, lowercase.
  void Apply(std::string* text, std::string* scratch,
             size_t* origin) const override {
    std::string& out = *scratch;
    out.clear();
    const std::string& in = *text;
    const size_t in_origin = *origin;
    std::string stripped;
    for (size_t pos = 0; pos < in.size();) {
      if (pos > 0 && pos == in_origin) *origin = out.size();
      const auto byte = static_cast<unsigned char>(in[pos]);
      if (byte < 0x80) {
        ++pos;
        if (clean_) {
          if (byte == '\t' || byte == '\n' || byte == '\r' || byte == ' ') {
            out.push_back(' ');
            continue;
          }
          if (byte < 0x20 || byte == 0x7F) continue;  // Controls.
        }
        out.push_back(lower_ && byte >= 'A' && byte <= 'Z'
                          ? static_cast<char>(byte + 32)
                          : static_cast<char>(byte));
        continue;
      }
      char32_t cp = NextCodePoint(in, &pos);
      if (clean_) {
        if (cp == 0xFFFD || IsOther(cp)) continue;
        if (IsWhitespace(cp)) cp = ' ';
      }
      const bool pad = chinese_ && IsChineseChar(cp);
      if (pad) out.push_back(' ');
      if (strip_) {
        stripped.clear();
        AppendStrippedAccents(cp, &stripped);
        for (size_t k = 0; k < stripped.size();) {
          const char32_t c = NextCodePoint(stripped, &k);
          if (lower_) {
            AppendLowercase(c, &out);
          } else {
            AppendUtf8(c, &out);
          }
        }
      } else if (lower_) {
        AppendLowercase(cp, &out);
      } else {
        AppendUtf8(cp, &out);
      }
      if (pad) out.push_back(' ');
    }
    if (in_origin >= in.size()) *origin = out.size();
    text->swap(out);
  }

 private:
  bool clean_, chinese_, strip_, lower_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void Apply(std::string* text, std::string* scratch,
             size_t* origin) const override {
    scratch->clear();
    const size_t in_origin = *origin;
    for (size_t pos = 0; pos < text->size();) {
      if (pos > 0 && pos == in_origin) *origin = scratch->size();
      AppendLowercase(NextCodePoint(*text, &pos), scratch);
    }
    if (in_origin >= text->size()) *origin = scratch->size();
    text->swap(*scratch);
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Apply(std::string* text, std::string* scratch,
             size_t* origin) const override {
    size_t begin = 0;
    size_t end = text->size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!IsWhitespace(NextCodePoint(*text, &next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        // Step back to the start of the last code point.
        size_t start = end - 1;
        while (start > begin &&
               (static_cast<unsigned char>((*text)[start]) & 0xC0) == 0x80) {
          --start;
        }
        size_t probe = start;
        if (!IsWhitespace(NextCodePoint(*text, &probe))) break;
        end = start;
      }
    }
    *origin = std::min(*origin > begin ? *origin - begin : 0, end - begin);
    scratch->assign(*text, begin, end - begin);
    text->swap(*scratch);
  }

 private:
  bool left_, right_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Apply(std::string* text, std::string* /*scratch*/,
             size_t* origin) const override {
    if (text->empty()) return;
    text->insert(0, prefix_);
    // The prefix is aligned with the first character it precedes.
    if (*origin > 0) *origin += prefix_.size();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  // With `whitespace_runs`, the pattern is the regex \s+ and `pattern` is
  // unused.
  ReplaceNormalizer(std::string pattern, bool whitespace_runs,
                    std::string content)
      : pattern_(std::move(pattern)),
        whitespace_runs_(whitespace_runs),
        content_(std::move(content)) {}

  void Apply(std::string* text, std::string* scratch,
             size_t* origin) const override {
    const std::string& in = *text;
    std::string& out = *scratch;
    out.clear();
    const size_t in_origin = *origin;
    size_t new_origin = 0;
    // Copies in[from, to) and tracks how many origin bytes it carried.
    auto copy = [&](size_t from, size_t to) {
      if (from < in_origin && new_origin == out.size()) {
        new_origin += std::min(to, in_origin) - from;
      }
      out.append(in, from, to - from);
    };
    // A replacement takes the alignment of the first character it replaces.
    auto replace = [&](size_t from) {
      const bool keeps = from < in_origin && new_origin == out.size();
      out += content_;
      if (keeps) new_origin = out.size();
    };
    if (whitespace_runs_) {
      size_t copied = 0;
      for (size_t pos = 0; pos < in.size();) {
        const size_t start = pos;
        if (!IsWhitespace(NextCodePoint(in, &pos))) continue;
        while (pos < in.size()) {
          size_t next = pos;
          if (!IsWhitespace(NextCodePoint(in, &next))) break;
          pos = next;
        }
        copy(copied, start);
        replace(start);
        copied = pos;
      }
      copy(copied, in.size());
    } else {
      if (pattern_.empty() || in.find(pattern_) == std::string::npos) return;
      size_t pos = 0;
      for (size_t hit; (hit = in.find(pattern_, pos)) != std::string::npos;
           pos = hit + pattern_.size()) {
        copy(pos, hit);
        replace(hit);
      }
      copy(pos, in.size());
    }
    *origin = new_origin;
    text->swap(out);
  }

 private:
  std::string pattern_;
  bool whitespace_runs_;
  std::string content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void Apply(std::string* text, std::string* scratch,
             size_t* origin) const override {
    for (const auto& step : steps_) step->Apply(text, scratch, origin);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(
    const json& j, absl::string_view what) {
  const std::string type = TypeOf(j);
  if (type == "BertNormalizer") {
    const bool lower = GetBool(j, "lowercase", true);
    // A null strip_accents follows lowercase, as in the reference.
    const bool strip = GetBool(j, "strip_accents", lower);
    return std::make_unique<BertNormalizer>(
        GetBool(j, "clean_text", true),
        GetBool(j, "handle_chinese_chars", true), strip, lower);
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(GetBool(j, "strip_left", true),
                                             GetBool(j, "strip_right", true));
  }
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(GetString(j, "prepend", ""));
  }
  if (type == "Replace") {
    const json& pattern = j.value("pattern", json::object());
    const std::string content = GetString(j, "content", "");
    if (pattern.contains("String") && pattern["String"].is_string()) {
      return std::make_unique<ReplaceNormalizer>(
          pattern["String"].get<std::string>(), false, content);
    }
    if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
      const std::string regex = pattern["Regex"].get<std::string>();
      // The one regex model2vec's own tokenizers use; a general regex
      // engine would cost more than the rest of the tokenizer.
      if (regex == "\\s+") {
        return std::make_unique<ReplaceNormalizer>("", true, content);
      }
      return Unsupported(what, absl::StrCat("Replace normalizer regex '", regex,
                                            "' is not supported"));
    }
    return Bad(what, "Replace normalizer without a String or Regex pattern");
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const json& step : j.value("normalizers", json::array())) {
      auto parsed = ParseNormalizer(step, what);
      if (!parsed.ok()) return parsed.status();
      steps.push_back(*std::move(parsed));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  return Unsupported(
      what, absl::StrCat("normalizer type '", type, "' is not supported"));
}

}  // namespace

// --------------------------------------------------------- Pre-tokenizers

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and maybe rewrites) `*pieces`; `scratch` is spare.
  // `origin` counts the leading bytes of the buffer that derive from the
  // input's first character (see Normalizer).
  virtual void Apply(Pieces* pieces, Pieces* scratch, size_t origin) const = 0;
};

namespace {

using Span = std::pair<uint32_t, uint32_t>;

// Splits each span at code points by class. `classify` returns 0 to drop
// the code point (and end the current piece), 1 to keep it in the current
// piece, 2 to emit it as a piece of its own, or any other value to keep
// runs of the same class together.
template <typename Classify>
void SplitSpans(Pieces* pieces, Classify classify) {
  std::vector<Span> out;
  out.reserve(pieces->spans.size() * 2);
  const std::string& buf = pieces->buffer;
  for (const auto& span : pieces->spans) {
    // Not a structured binding: clang 14 cannot capture one in the lambda.
    const auto offset = span.first;
    const absl::string_view text(buf.data() + offset, span.second);
    size_t start = 0;
    int run_class = -1;
    auto flush = [&](size_t end) {
      if (end > start) out.emplace_back(offset + start, end - start);
    };
    for (size_t pos = 0; pos < text.size();) {
      const size_t at = pos;
      const int c = classify(NextCodePoint(text, &pos));
      if (c == 0) {
        flush(at);
        start = pos;
        run_class = -1;
      } else if (c == 2) {
        flush(at);
        out.emplace_back(offset + at, pos - at);
        start = pos;
        run_class = -1;
      } else if (c != 1) {
        if (run_class != c) {
          flush(at);
          start = at;
          run_class = c;
        }
      }
    }
    flush(text.size());
  }
  pieces->spans.swap(out);
}

class BertPreTokenizer : public PreTokenizer {
 public:
  void Apply(Pieces* pieces, Pieces*, size_t) const override {
    SplitSpans(pieces, [](char32_t cp) {
      if (IsWhitespace(cp)) return 0;
      return IsPunctuation(cp) ? 2 : 1;
    });
  }
};

class WhitespacePreTokenizer : public PreTokenizer {
 public:
  // The reference's regex \w+|[^\w\s]+: word runs and symbol runs.
  void Apply(Pieces* pieces, Pieces*, size_t) const override {
    SplitSpans(pieces, [](char32_t cp) {
      if (IsWhitespace(cp)) return 0;
      return IsWordChar(cp) ? 3 : 4;
    });
  }
};

class WhitespaceSplitPreTokenizer : public PreTokenizer {
 public:
  void Apply(Pieces* pieces, Pieces*, size_t) const override {
    SplitSpans(pieces, [](char32_t cp) { return IsWhitespace(cp) ? 0 : 1; });
  }
};

class PunctuationPreTokenizer : public PreTokenizer {
 public:
  void Apply(Pieces* pieces, Pieces*, size_t) const override {
    SplitSpans(pieces, [](char32_t cp) { return IsPunctuation(cp) ? 2 : 1; });
  }
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)),
        prepend_(prepend),
        split_(split) {}

  void Apply(Pieces* pieces, Pieces* scratch, size_t origin) const override {
    scratch->buffer.clear();
    scratch->spans.clear();
    for (size_t i = 0; i < pieces->spans.size(); ++i) {
      const auto [offset, length] = pieces->spans[i];
      const absl::string_view text(pieces->buffer.data() + offset, length);
      const size_t begin = scratch->buffer.size();
      const bool prepend = prepend_ == Prepend::kAlways ||
                           (prepend_ == Prepend::kFirst && offset < origin);
      if (prepend && !absl::StartsWith(text, replacement_) &&
          !absl::StartsWith(text, " ")) {
        scratch->buffer += replacement_;
      }
      for (char c : text) {
        if (c == ' ') {
          scratch->buffer += replacement_;
        } else {
          scratch->buffer.push_back(c);
        }
      }
      const size_t end = scratch->buffer.size();
      if (!split_) {
        if (end > begin) scratch->spans.emplace_back(begin, end - begin);
        continue;
      }
      // Each replacement starts a new piece that keeps it as a prefix.
      const absl::string_view out(scratch->buffer.data() + begin, end - begin);
      size_t start = 0;
      for (size_t hit = out.find(replacement_, 1);
           hit != absl::string_view::npos;
           hit = out.find(replacement_, hit + replacement_.size())) {
        if (hit > start)
          scratch->spans.emplace_back(begin + start, hit - start);
        start = hit;
      }
      if (out.size() > start) {
        scratch->spans.emplace_back(begin + start, out.size() - start);
      }
    }
    std::swap(*pieces, *scratch);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> s)
      : steps_(std::move(s)) {}
  void Apply(Pieces* pieces, Pieces* scratch, size_t origin) const override {
    for (const auto& step : steps_) step->Apply(pieces, scratch, origin);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(
    const json& j, absl::string_view what) {
  const std::string type = TypeOf(j);
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") {
    return std::make_unique<WhitespaceSplitPreTokenizer>();
  }
  if (type == "Punctuation") {
    const std::string behavior = GetString(j, "behavior", "Isolated");
    if (behavior != "Isolated") {
      return Unsupported(what, absl::StrCat("Punctuation behavior '", behavior,
                                            "' is not supported"));
    }
    return std::make_unique<PunctuationPreTokenizer>();
  }
  if (type == "Metaspace") {
    const std::string replacement = GetString(j, "replacement", "\u2581");
    auto prepend = MetaspacePreTokenizer::Prepend::kAlways;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      const std::string scheme = j["prepend_scheme"].get<std::string>();
      if (scheme == "first") {
        prepend = MetaspacePreTokenizer::Prepend::kFirst;
      } else if (scheme == "never") {
        prepend = MetaspacePreTokenizer::Prepend::kNever;
      } else if (scheme != "always") {
        return Bad(what, absl::StrCat("unknown Metaspace prepend_scheme '",
                                      scheme, "'"));
      }
    } else if (!GetBool(j, "add_prefix_space", true)) {
      prepend = MetaspacePreTokenizer::Prepend::kNever;  // Older files.
    }
    if (replacement.empty()) return Bad(what, "empty Metaspace replacement");
    return std::make_unique<MetaspacePreTokenizer>(replacement, prepend,
                                                   GetBool(j, "split", true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const json& step : j.value("pretokenizers", json::array())) {
      auto parsed = ParsePreTokenizer(step, what);
      if (!parsed.ok()) return parsed.status();
      steps.push_back(*std::move(parsed));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  return Unsupported(
      what, absl::StrCat("pre-tokenizer type '", type, "' is not supported"));
}

}  // namespace

// ------------------------------------------------------------------ Models

class TokenModel {
 public:
  virtual ~TokenModel() = default;
  virtual void Tokenize(absl::string_view word,
                        std::vector<int32_t>* ids) const = 0;
};

namespace {

// Vocabulary {"token": id} shared by WordPiece, BPE and WordLevel.
absl::Status ParseVocabMap(const json& model, absl::string_view what,
                           absl::flat_hash_map<std::string, int32_t>* vocab) {
  auto it = model.find("vocab");
  if (it == model.end() || !it->is_object()) {
    return Bad(what, "model.vocab must be an object of token -> id");
  }
  vocab->reserve(it->size());
  for (const auto& [token, id] : it->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Bad(what, absl::StrCat("vocab id of '", token,
                                    "' is not a non-negative integer"));
    }
    (*vocab)[token] = static_cast<int32_t>(id.get<int64_t>());
  }
  return absl::OkStatus();
}

class WordPieceModel : public TokenModel {
 public:
  WordPieceModel(const absl::flat_hash_map<std::string, int32_t>& vocab,
                 const std::string& prefix, int32_t unk, size_t max_chars)
      : unk_(unk), max_chars_(max_chars) {
    for (const auto& [token, id] : vocab) trie_.Insert(token, id);
    trie_.Freeze();
    prefix_node_ = prefix.empty() ? ByteTrie::kRoot : trie_.Find(prefix);
  }

  // Greedy longest match first; a word with any unmatched rest is one unk.
  void Tokenize(absl::string_view word,
                std::vector<int32_t>* ids) const override {
    if (word.size() > max_chars_ && CountCodePoints(word) > max_chars_) {
      ids->push_back(unk_);
      return;
    }
    const size_t mark = ids->size();
    size_t start = 0;
    while (start < word.size()) {
      int32_t node = start == 0 ? ByteTrie::kRoot : prefix_node_;
      int32_t best_id = ByteTrie::kNone;
      size_t best_end = start;
      for (size_t i = start; i < word.size() && node != ByteTrie::kNone; ++i) {
        node = trie_.Child(node, static_cast<uint8_t>(word[i]));
        if (node != ByteTrie::kNone && trie_.Value(node) != ByteTrie::kNone &&
            IsBoundary(word, i + 1)) {
          best_id = trie_.Value(node);
          best_end = i + 1;
        }
      }
      if (best_id == ByteTrie::kNone) {
        ids->resize(mark);
        ids->push_back(unk_);
        return;
      }
      ids->push_back(best_id);
      start = best_end;
    }
  }

 private:
  static bool IsBoundary(absl::string_view s, size_t i) {
    return i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
  }

  ByteTrie trie_;
  int32_t prefix_node_;
  int32_t unk_;
  size_t max_chars_;
};

class WordLevelModel : public TokenModel {
 public:
  WordLevelModel(absl::flat_hash_map<std::string, int32_t> vocab, int32_t unk)
      : vocab_(std::move(vocab)), unk_(unk) {}
  void Tokenize(absl::string_view word,
                std::vector<int32_t>* ids) const override {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      ids->push_back(it->second);
    } else if (unk_ >= 0) {
      ids->push_back(unk_);
    }
  }

 private:
  absl::flat_hash_map<std::string, int32_t> vocab_;
  int32_t unk_;
};

// Byte-fallback token ids "<0x00>".."<0xFF>", or empty when any is missing.
std::vector<int32_t> ByteFallbackIds(
    const absl::flat_hash_map<std::string, int32_t>& vocab) {
  std::vector<int32_t> ids(256);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab.find(name);
    if (it == vocab.end()) return {};
    ids[b] = it->second;
  }
  return ids;
}

class UnigramModel : public TokenModel {
 public:
  UnigramModel(std::vector<double> scores, ByteTrie trie, int32_t unk,
               std::vector<int32_t> byte_ids)
      : scores_(std::move(scores)),
        trie_(std::move(trie)),
        unk_(unk),
        byte_ids_(std::move(byte_ids)) {
    double min_score = std::numeric_limits<double>::max();
    for (double s : scores_) min_score = std::min(min_score, s);
    // The reference scores an unknown character 10 below the rarest piece.
    unk_score_ = (scores_.empty() ? 0.0 : min_score) - 10.0;
  }

  // Viterbi over byte positions: the best-scoring segmentation into
  // vocabulary pieces, one unknown piece per uncovered character. Ties keep
  // the first candidate found (earlier start, then shorter piece), as the
  // reference does.
  void Tokenize(absl::string_view word,
                std::vector<int32_t>* ids) const override {
    struct Best {
      double score = 0;
      int32_t start = -1;  // -1: no path ends here yet.
      int32_t id = -1;
    };
    const size_t n = word.size();
    std::vector<Best> best(n + 1);
    for (size_t start = 0; start < n;) {
      size_t next = start;
      NextCodePoint(word, &next);
      const size_t char_len = next - start;
      const double base = best[start].score;
      bool covered = false;
      int32_t node = ByteTrie::kRoot;
      for (size_t i = start; i < n; ++i) {
        node = trie_.Child(node, static_cast<uint8_t>(word[i]));
        if (node == ByteTrie::kNone) break;
        const int32_t id = trie_.Value(node);
        if (id == ByteTrie::kNone) continue;
        Best& target = best[i + 1];
        const double score = base + scores_[id];
        if (target.start < 0 || score > target.score) {
          target = {score, static_cast<int32_t>(start), id};
        }
        if (i + 1 - start == char_len) covered = true;
      }
      if (!covered) {
        Best& target = best[next];
        const double score = base + unk_score_;
        if (target.start < 0 || score > target.score) {
          target = {score, static_cast<int32_t>(start), unk_};
        }
      }
      start = next;
    }
    // Walk back from the end, then emit in order, fusing runs of unknowns.
    std::vector<std::pair<int32_t, int32_t>> path;  // start, id
    for (size_t end = n; end > 0 && best[end].start >= 0;) {
      path.emplace_back(best[end].start, best[end].id);
      end = static_cast<size_t>(best[end].start);
    }
    bool last_unk = false;
    for (size_t k = path.size(); k-- > 0;) {
      const int32_t id = path[k].second;
      if (id < 0) continue;  // Unknown, and the model has no unknown id.
      if (id != unk_) {
        ids->push_back(id);
        last_unk = false;
        continue;
      }
      if (!byte_ids_.empty()) {
        const size_t begin = path[k].first;
        const size_t end = k == 0 ? n : path[k - 1].first;
        for (size_t b = begin; b < end; ++b) {
          ids->push_back(byte_ids_[static_cast<uint8_t>(word[b])]);
        }
        continue;
      }
      if (!last_unk) ids->push_back(unk_);
      last_unk = true;
    }
  }

 private:
  std::vector<double> scores_;
  ByteTrie trie_;
  int32_t unk_;
  std::vector<int32_t> byte_ids_;
  double unk_score_;
};

class BpeModel : public TokenModel {
 public:
  BpeModel(absl::flat_hash_map<std::string, int32_t> vocab,
           absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges,
           int32_t unk, std::string prefix, std::string suffix, bool fuse_unk,
           std::vector<int32_t> byte_ids, bool ignore_merges)
      : vocab_(std::move(vocab)),
        merges_(std::move(merges)),
        unk_(unk),
        prefix_(std::move(prefix)),
        suffix_(std::move(suffix)),
        fuse_unk_(fuse_unk),
        byte_ids_(std::move(byte_ids)),
        ignore_merges_(ignore_merges) {}

  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
           static_cast<uint32_t>(b);
  }

  void Tokenize(absl::string_view word,
                std::vector<int32_t>* ids) const override {
    if (ignore_merges_) {
      auto it = vocab_.find(word);
      if (it != vocab_.end()) {
        ids->push_back(it->second);
        return;
      }
    }
    // One symbol per character, then merges by rank until none applies.
    std::vector<int32_t> symbols;
    std::string piece;
    bool last_unk = false;
    for (size_t pos = 0; pos < word.size();) {
      const size_t start = pos;
      NextCodePoint(word, &pos);
      piece.clear();
      if (start > 0) piece += prefix_;
      piece.append(word.data() + start, pos - start);
      if (pos == word.size()) piece += suffix_;
      auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        symbols.push_back(it->second);
        last_unk = false;
      } else if (!byte_ids_.empty()) {
        for (size_t b = start; b < pos; ++b) {
          symbols.push_back(byte_ids_[static_cast<uint8_t>(word[b])]);
        }
        last_unk = false;
      } else if (unk_ >= 0) {
        if (!(fuse_unk_ && last_unk)) symbols.push_back(unk_);
        last_unk = true;
      }
    }
    while (symbols.size() > 1) {
      int32_t best_rank = std::numeric_limits<int32_t>::max();
      size_t best_at = 0;
      int32_t best_id = -1;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = merges_.find(Key(symbols[i], symbols[i + 1]));
        if (it != merges_.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          best_at = i;
          best_id = it->second.second;
        }
      }
      if (best_id < 0) break;
      symbols[best_at] = best_id;
      symbols.erase(symbols.begin() + best_at + 1);
    }
    ids->insert(ids->end(), symbols.begin(), symbols.end());
  }

 private:
  absl::flat_hash_map<std::string, int32_t> vocab_;
  // (left id, right id) -> (rank, merged id).
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  int32_t unk_;
  std::string prefix_;
  std::string suffix_;
  bool fuse_unk_;
  std::vector<int32_t> byte_ids_;
  bool ignore_merges_;
};

}  // namespace

// ------------------------------------------------------------ Added tokens

// Added tokens are cut out of the text before normalization (or, for
// `normalized` ones, out of each normalized segment), leftmost-longest.
class AddedTokens {
 public:
  struct Token {
    int32_t id;
    bool single_word, lstrip, rstrip;
  };
  struct Match {
    size_t begin, end;
    int32_t id;
  };

  void Add(const std::string& content, const Token& token, bool normalized) {
    ByteTrie& trie = normalized ? normalized_trie_ : raw_trie_;
    (normalized ? has_normalized_ : has_raw_) = true;
    trie.Insert(content, static_cast<int32_t>(tokens_.size()));
    tokens_.push_back(token);
  }
  void Freeze() {
    raw_trie_.Freeze();
    normalized_trie_.Freeze();
  }
  bool has_raw() const { return has_raw_; }
  bool has_normalized() const { return has_normalized_; }

  // The first match at or after `from`, or false.
  bool FindNext(absl::string_view text, size_t from, bool normalized,
                Match* match) const {
    const ByteTrie& trie = normalized ? normalized_trie_ : raw_trie_;
    for (size_t start = from; start < text.size(); ++start) {
      int32_t node = ByteTrie::kRoot;
      int32_t found = ByteTrie::kNone;
      size_t end = start;
      for (size_t i = start; i < text.size(); ++i) {
        node = trie.Child(node, static_cast<uint8_t>(text[i]));
        if (node == ByteTrie::kNone) break;
        if (trie.Value(node) != ByteTrie::kNone) {
          found = trie.Value(node);
          end = i + 1;
        }
      }
      if (found == ByteTrie::kNone) continue;
      const Token& token = tokens_[found];
      if (token.single_word && !(IsWordEdge(text, start, from, true) &&
                                 IsWordEdge(text, end, from, false))) {
        continue;
      }
      size_t begin = start;
      if (token.lstrip) {
        while (begin > from && text[begin - 1] == ' ') --begin;
      }
      if (token.rstrip) {
        while (end < text.size() && text[end] == ' ') ++end;
      }
      *match = {begin, end, token.id};
      return true;
    }
    return false;
  }

 private:
  // True when the code point before (`before`) or at `pos` is not a word
  // character, so a single-word token there stands alone.
  static bool IsWordEdge(absl::string_view text, size_t pos, size_t from,
                         bool before) {
    if (before) {
      if (pos <= from) return true;
      size_t start = pos - 1;
      while (start > from &&
             (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
        --start;
      }
      return !IsWordChar(NextCodePoint(text, &start));
    }
    if (pos >= text.size()) return true;
    return !IsWordChar(NextCodePoint(text, &pos));
  }

  std::vector<Token> tokens_;
  ByteTrie raw_trie_;
  ByteTrie normalized_trie_;
  bool has_raw_ = false;
  bool has_normalized_ = false;
};

// --------------------------------------------------------------- Tokenizer

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

namespace {

absl::StatusOr<std::unique_ptr<TokenModel>> ParseModel(
    const json& model, absl::string_view what, std::string* type,
    std::vector<std::pair<std::string, int32_t>>* vocab_out, int32_t* unk_id) {
  *type = TypeOf(model);
  if (type->empty()) {
    // Files from older library versions leave the type out; tell the
    // models apart by their fields.
    if (model.contains("merges")) {
      *type = "BPE";
    } else if (model.contains("vocab") && model["vocab"].is_array()) {
      *type = "Unigram";
    } else if (model.contains("continuing_subword_prefix")) {
      *type = "WordPiece";
    } else {
      *type = "WordLevel";
    }
  }
  if (*type == "Unigram") {
    auto it = model.find("vocab");
    if (it == model.end() || !it->is_array()) {
      return Bad(what, "Unigram model.vocab must be a list of [piece, score]");
    }
    std::vector<double> scores;
    ByteTrie trie;
    absl::flat_hash_map<std::string, int32_t> ids;
    for (const json& entry : *it) {
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() ||
          !entry[1].is_number()) {
        return Bad(what, "Unigram vocab entries must be [piece, score]");
      }
      const std::string piece = entry[0].get<std::string>();
      const auto id = static_cast<int32_t>(scores.size());
      scores.push_back(entry[1].get<double>());
      // A duplicated piece keeps its first id, as the reference's lookup.
      if (ids.emplace(piece, id).second) trie.Insert(piece, id);
      vocab_out->emplace_back(piece, id);
    }
    trie.Freeze();
    *unk_id = -1;
    if (model.contains("unk_id") && model["unk_id"].is_number_integer()) {
      const int64_t unk = model["unk_id"].get<int64_t>();
      if (unk < 0 || unk >= static_cast<int64_t>(scores.size())) {
        return Bad(what, absl::StrCat("Unigram unk_id ", unk,
                                      " is outside the vocabulary"));
      }
      *unk_id = static_cast<int32_t>(unk);
    }
    std::vector<int32_t> byte_ids;
    if (GetBool(model, "byte_fallback", false)) byte_ids = ByteFallbackIds(ids);
    return std::make_unique<UnigramModel>(std::move(scores), std::move(trie),
                                          *unk_id, std::move(byte_ids));
  }

  absl::flat_hash_map<std::string, int32_t> vocab;
  if (absl::Status s = ParseVocabMap(model, what, &vocab); !s.ok()) return s;
  for (const auto& [token, id] : vocab) vocab_out->emplace_back(token, id);
  const std::string unk_token = GetString(model, "unk_token", "");
  *unk_id = -1;
  if (!unk_token.empty()) {
    auto it = vocab.find(unk_token);
    if (it == vocab.end()) {
      return Bad(what, absl::StrCat("unk_token '", unk_token,
                                    "' is not in the vocabulary"));
    }
    *unk_id = it->second;
  }

  if (*type == "WordPiece") {
    if (*unk_id < 0) return Bad(what, "WordPiece model needs an unk_token");
    const int64_t max_chars = model.value("max_input_chars_per_word", 100);
    return std::make_unique<WordPieceModel>(
        vocab, GetString(model, "continuing_subword_prefix", "##"), *unk_id,
        static_cast<size_t>(std::max<int64_t>(max_chars, 0)));
  }
  if (*type == "WordLevel") {
    return std::make_unique<WordLevelModel>(std::move(vocab), *unk_id);
  }
  if (*type == "BPE") {
    if (model.contains("dropout") && model["dropout"].is_number() &&
        model["dropout"].get<double>() > 0) {
      return Unsupported(what, "BPE dropout is not supported");
    }
    absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges;
    const std::string prefix =
        GetString(model, "continuing_subword_prefix", "");
    const json& list = model.value("merges", json::array());
    int32_t rank = 0;
    for (const json& merge : list) {
      std::string left, right;
      if (merge.is_string()) {
        const std::string s = merge.get<std::string>();
        const size_t space = s.find(' ', 1);
        if (space == std::string::npos) {
          return Bad(what, absl::StrCat("BPE merge '", s, "' is not 'a b'"));
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2 &&
                 merge[0].is_string() && merge[1].is_string()) {
        left = merge[0].get<std::string>();
        right = merge[1].get<std::string>();
      } else {
        return Bad(what, "BPE merges must be 'a b' strings or [a, b] pairs");
      }
      // The merged token drops the right part's continuation prefix.
      std::string merged = left;
      merged += absl::StartsWith(right, prefix) && !prefix.empty()
                    ? right.substr(prefix.size())
                    : right;
      auto l = vocab.find(left), r = vocab.find(right), m = vocab.find(merged);
      if (l == vocab.end() || r == vocab.end() || m == vocab.end()) {
        return Bad(what, absl::StrCat("BPE merge '", left, " ", right,
                                      "' uses a token not in the vocabulary"));
      }
      merges.emplace(BpeModel::Key(l->second, r->second),
                     std::make_pair(rank++, m->second));
    }
    std::vector<int32_t> byte_ids;
    if (GetBool(model, "byte_fallback", false)) {
      byte_ids = ByteFallbackIds(vocab);
    }
    return std::make_unique<BpeModel>(
        std::move(vocab), std::move(merges), *unk_id, prefix,
        GetString(model, "end_of_word_suffix", ""),
        GetBool(model, "fuse_unk", false), std::move(byte_ids),
        GetBool(model, "ignore_merges", false));
  }
  return Unsupported(what,
                     absl::StrCat("model type '", *type, "' is not supported"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(
    absl::string_view json_text, absl::string_view what) {
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  try {
    const json root = json::parse(json_text.begin(), json_text.end());
    if (!root.is_object() || !root.contains("model") ||
        !root["model"].is_object()) {
      return Bad(what, "not a tokenizer.json (no \"model\" object)");
    }
    std::vector<std::pair<std::string, int32_t>> vocab;
    auto model = ParseModel(root["model"], what, &tok->model_type_, &vocab,
                            &tok->unk_id_);
    if (!model.ok()) return model.status();
    tok->model_ = *std::move(model);

    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
      auto normalizer = ParseNormalizer(root["normalizer"], what);
      if (!normalizer.ok()) return normalizer.status();
      tok->normalizer_ = *std::move(normalizer);
    }
    if (root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null()) {
      auto pre = ParsePreTokenizer(root["pre_tokenizer"], what);
      if (!pre.ok()) return pre.status();
      tok->pre_tokenizer_ = *std::move(pre);
    }

    tok->added_ = std::make_unique<AddedTokens>();
    absl::flat_hash_map<std::string, int32_t> seen;
    for (const auto& [token, id] : vocab) seen.emplace(token, id);
    // Like the reference, an added token takes the id its content has in
    // the model vocabulary, else the next id past the vocabulary; the "id"
    // field is only checked for sanity.
    int32_t next_added_id = static_cast<int32_t>(vocab.size());
    for (const json& added : root.value("added_tokens", json::array())) {
      if (!added.is_object() || !added.contains("id") ||
          !added["id"].is_number_integer() || !added.contains("content") ||
          !added["content"].is_string()) {
        return Bad(what, "added_tokens entries need an id and a content");
      }
      const int64_t id = added["id"].get<int64_t>();
      const std::string content = added["content"].get<std::string>();
      if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
        return Bad(what, absl::StrCat("added token '", content,
                                      "' has an invalid id"));
      }
      if (content.empty()) continue;
      int32_t token_id;
      if (auto it = seen.find(content); it != seen.end()) {
        token_id = it->second;
      } else {
        token_id = next_added_id;
        seen.emplace(content, token_id);
        vocab.emplace_back(content, token_id);
      }
      next_added_id = std::max(next_added_id, token_id + 1);
      const bool special = GetBool(added, "special", false);
      tok->added_->Add(
          content,
          {token_id, GetBool(added, "single_word", false),
           GetBool(added, "lstrip", false), GetBool(added, "rstrip", false)},
          GetBool(added, "normalized", !special));
    }
    tok->added_->Freeze();

    // Vocabulary size and median token length, as model2vec computes them
    // over the whole vocabulary, added tokens included.
    std::vector<size_t> lengths;
    lengths.reserve(seen.size());
    int32_t max_id = -1;
    for (const auto& [token, id] : seen) {
      lengths.push_back(CountCodePoints(token));
      max_id = std::max(max_id, id);
    }
    if (lengths.empty()) return Bad(what, "the vocabulary is empty");
    // Ids index tables sized to the largest one: a stray huge id would
    // cost gigabytes, and real vocabularies number their tokens densely.
    if (static_cast<size_t>(max_id) >= 2 * lengths.size() + 1024) {
      return Bad(what,
                 absl::StrCat("token ids run up to ", max_id, " but only ",
                              lengths.size(), " tokens exist"));
    }
    tok->vocab_size_ = max_id + 1;
    std::sort(lengths.begin(), lengths.end());
    const size_t mid = lengths.size() / 2;
    const size_t median = lengths.size() % 2 == 1
                              ? lengths[mid]
                              : (lengths[mid - 1] + lengths[mid]) / 2;
    tok->median_token_length_ =
        static_cast<int32_t>(std::max<size_t>(median, 1));
  } catch (const json::exception& e) {
    return Bad(what, absl::StrCat("invalid tokenizer JSON: ", e.what()));
  }
  return tok;
}

void Tokenizer::Encode(absl::string_view text,
                       std::vector<int32_t>* ids) const {
  if (!added_->has_raw()) {
    EncodeSegment(text, true, ids);
    return;
  }
  size_t pos = 0;
  bool first = true;
  AddedTokens::Match match;
  while (pos < text.size() && added_->FindNext(text, pos, false, &match)) {
    if (match.begin > pos) {
      EncodeSegment(text.substr(pos, match.begin - pos), first, ids);
    }
    ids->push_back(match.id);
    first = false;
    pos = match.end;
  }
  if (pos < text.size()) EncodeSegment(text.substr(pos), first, ids);
}

void Tokenizer::EncodeSegment(absl::string_view text, bool first_segment,
                              std::vector<int32_t>* ids) const {
  Pieces pieces;
  Pieces scratch;
  pieces.buffer.assign(text.data(), text.size());
  size_t origin = 0;
  if (first_segment && !text.empty()) NextCodePoint(text, &origin);
  if (normalizer_ != nullptr) {
    normalizer_->Apply(&pieces.buffer, &scratch.buffer, &origin);
  }
  if (pieces.buffer.empty()) return;

  // Normalized added tokens split the normalized text again; the model
  // sees only the parts between them.
  std::vector<std::pair<Span, int32_t>> parts;  // span, or id when >= 0.
  if (added_->has_normalized()) {
    size_t pos = 0;
    AddedTokens::Match match;
    while (pos < pieces.buffer.size() &&
           added_->FindNext(pieces.buffer, pos, true, &match)) {
      if (match.begin > pos) {
        parts.push_back({{static_cast<uint32_t>(pos),
                          static_cast<uint32_t>(match.begin - pos)},
                         -1});
      }
      parts.push_back({{0, 0}, match.id});
      pos = match.end;
    }
    if (pos < pieces.buffer.size()) {
      parts.push_back({{static_cast<uint32_t>(pos),
                        static_cast<uint32_t>(pieces.buffer.size() - pos)},
                       -1});
    }
  } else {
    parts.push_back({{0, static_cast<uint32_t>(pieces.buffer.size())}, -1});
  }

  const std::string normalized = parts.size() > 1 ? pieces.buffer : "";
  for (size_t p = 0; p < parts.size(); ++p) {
    if (parts[p].second >= 0) {
      ids->push_back(parts[p].second);
      continue;
    }
    if (parts.size() > 1) {
      pieces.buffer.assign(normalized, parts[p].first.first,
                           parts[p].first.second);
      pieces.spans.assign(1, {0, parts[p].first.second});
    } else {
      pieces.spans.assign(1, parts[p].first);
    }
    if (pre_tokenizer_ != nullptr) {
      const size_t start = parts[p].first.first;
      const size_t part_origin =
          parts.size() > 1 ? (origin > start ? origin - start : 0) : origin;
      pre_tokenizer_->Apply(&pieces, &scratch, part_origin);
    }
    for (const auto& [offset, length] : pieces.spans) {
      model_->Tokenize(absl::string_view(pieces.buffer.data() + offset, length),
                       ids);
    }
  }
}

}  // namespace promptcache::internal

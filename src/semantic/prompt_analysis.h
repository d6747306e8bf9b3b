// What the match decision reads of one prompt: its answer-determining
// ("hard") tokens, negations, opposite words, operators, content words as
// lemmas, and question form. Computed once per text; compared pairwise by
// the conflict veto (conflict_veto.h) and the match features
// (match_features.h).
#ifndef PROMPTCACHE_SRC_SEMANTIC_PROMPT_ANALYSIS_H_
#define PROMPTCACHE_SRC_SEMANTIC_PROMPT_ANALYSIS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace promptcache::internal {

class Lexicon;

struct ContentWord {
  std::string lemma;  // WordNet base form ("went" -> "go", "colour" -> "color")
  std::string stem;   // light suffix stripping, for typos and derivations
  bool capitalized = false;  // written with a capital (a name, perhaps)
  // An -ing form read as its verb ("rating" -> "rate"), and whether the word
  // stands as a noun (after "the", "my"..., or before "of"): "the rating"
  // is not "the rate", though "hotel booking" is "book a hotel".
  bool ing = false;
  bool nominal = false;
  // Stem of this word written together with the content word just before
  // or after it in the text ("user" + "name" -> Stem("username")), or
  // empty: "user name" / "username", "quick sort" / "quicksort".
  std::string joined_prev = {};
  std::string joined_next = {};
};

struct PromptAnalysis {
  // Every word's comparison key in order: the number for numbers, the text
  // of identifiers, the lemma otherwise; with a "to>"/"from>" marker on
  // hard tokens that follow a direction word.
  std::vector<std::string> keys;
  // Keys of hard tokens: numbers and number words, units after a number,
  // currencies, dates, names written with a capital inside a sentence,
  // identifiers and code, quoted strings.
  absl::flat_hash_set<std::string> hard_set;
  // For each of `keys`, 1 when the word has no direction marker, qualifies
  // what follows and is not placed by a preposition ("Paris flights",
  // "migrate MySQL to Postgres"; not "a taxi at Heathrow"): where the other
  // side's "to Paris" / "from MySQL" asks nothing more (conflict_veto.cc).
  std::vector<uint8_t> attributive;
  std::vector<std::string> numbers;  // number keys, in order
  // Ordinal words ("first", "second", "3rd" as words), in order: "the
  // first ... the second" is not "the second ... the first".
  std::vector<std::string> ordinals;
  std::vector<std::string> operators;  // "op:+" ..., sorted
  // Keys of names (capitalized inside a sentence, or all caps) without a
  // direction marker, in order: who does what to whom.
  std::vector<std::string> names;
  // Keys of all-caps words of up to 6 letters ("ML", "HF"): they may stand
  // for words the other side spells out ("machine learning").
  absl::flat_hash_set<std::string> acronyms;
  int negations = 0;
  // Pronouns' persons in order ("1", "1pl", "2", "3pl"): "do I owe you" is
  // not "do you owe me".
  std::vector<std::string> persons;
  // Whose things it asks about: "me:name" for "my name", "you:name" for
  // "your name" (the next word's stem), sorted. "your" is the addressee's
  // only after "be" or "me" ("what is your name", "tell me your name");
  // elsewhere ("how to reset your password") it is anyone's, the asker's.
  std::vector<std::string> whose;
  // Whose state a short prompt asks about, kSelf ("where am I", "was I",
  // "I'm") and kAddressee ("are you", "were you", "you're") bits.
  static constexpr uint8_t kSelf = 1, kAddressee = 2;
  uint8_t being = 0;
  // "past" (was, did, had), "future" (will, shall) or empty: the first
  // auxiliary that marks one.
  std::string tense;
  // What a yes-no question asks of the asker (0 for other prompts), as a set of
  // kMust ("do I need to", "must I", "should I") and kMay ("can I", "am I able
  // to", "is it possible to"): "do I have to verify my identity" / "can I
  // verify my identity" have different answers.
  static constexpr uint8_t kMust = 1, kMay = 2;
  uint8_t modality = 0;
  // Lemmas of words in the opposite-word groups, in order.
  std::vector<std::string> polar;
  // Words that are neither stop words nor hard tokens (opposite words
  // included), in order.
  std::vector<ContentWord> content;
  // Keys of every non-stop word (content, polar and hard) in order: word
  // order, as the match features read it.
  std::vector<std::string> order;
  // Lemmas of every non-stop word (content, polar and hard), for lookups.
  absl::flat_hash_set<std::string> lemmas;
  // `order` without direction markers ("to>java" -> "java"), stemmed: what
  // word order is compared on ("a string in a list" / "a list of
  // strings", "convert python to java" / "convert java to python").
  std::vector<std::string> order_stems;
  // The question's kind, normalised: "how" for "how do I", "how to", "what
  // is the best way to"; "what" for "what is", "explain", "define";
  // "why", "when", "where", "who", "how-much", "yes-no" ("can I...");
  // empty for none.
  std::string question_kind;
  int word_count = 0;
};

// `key` without its "to>" / "from>" direction marker, if it has one.
absl::string_view WithoutDirection(absl::string_view key);

// Whether `x` and `y` are two nouns of one verb ("the rating" / "the
// rate"): different things though one lemma or stem.
bool DifferentNouns(const ContentWord& x, const ContentWord& y);

// Analyzes `text` with `lexicon` (Lexicon::Default() in the library).
PromptAnalysis AnalyzePrompt(absl::string_view text, const Lexicon& lexicon);

// Whether two question kinds ask different things: different kinds, or a
// specific kind ("why", "when", "yes-no"...) against none. A keyword query
// (no kind) matches "what" and "how".
bool QuestionKindsDiffer(absl::string_view a, absl::string_view b);

// Whether `word` has a counterpart among `other`'s words: the same lemma,
// the same stem, the same two words written as one ("username" / "user
// name"), one a prefix (5+ letters) of the other, one typo apart, WordNet
// synonyms (sets *by_synonym) or derivationally related words.
bool Accounted(const ContentWord& word, const PromptAnalysis& other,
               const Lexicon& lexicon, bool* by_synonym);

// A stable hash of the text's numbers in order ("2 tickets", "two tickets"
// -> same). Texts whose signatures differ always meet a conflict, so a
// candidate can be refused from its index slot alone. Stored in index
// files: a change bumps kSlotsMagic (vector_index.cc), so that saved files
// are rebuilt.
uint64_t NumberSignature(absl::string_view text);
uint64_t NumberSignature(const PromptAnalysis& analysis);

// "today", "tonight", "now"...: a time adverb that may stand at either end
// of a prompt ("weather in Berlin today" / "today's weather in Berlin")
// when it is the only one on each side (match_features.cc); two of them
// ("today ... tomorrow") keep their order.
bool IsMovableTimeWord(absl::string_view key);

// Words in one group of opposites: "start"/"stop", "enable"/"disable",
// "ascending"/"descending". Returns the group index * 2 + side, or -1.
// WordNet's antonyms (Lexicon::AreAntonyms) cover general English; these
// groups add the software and everyday opposites WordNet does not list
// ("login"/"logout", "upload"/"download", "mute"/"unmute").
int PolarGroupOf(absl::string_view lemma);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_PROMPT_ANALYSIS_H_

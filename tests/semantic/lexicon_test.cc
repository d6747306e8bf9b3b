// The WordNet-derived lexicon: the text format, and facts of the shipped data.
#include "semantic/lexicon.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace promptcache::internal {
namespace {

constexpr absl::string_view kSmall =
    "# a comment\n"
    "[lemmas]\n"
    "book 7 2\n"
    "reserve 2\n"
    "hotel\n"
    "go\n"
    "run\n"
    "colour\n"
    "color\n"
    "up\n"
    "down\n"
    "\n"
    "[antonyms]\n"
    "down up\n"
    "[exceptions]\n"
    "went go\n"
    "[spellings]\n"
    "colour color\n"
    "[derivations]\n"
    "book reserve\n";

std::unique_ptr<Lexicon> ParseOrDie(absl::string_view text) {
  absl::StatusOr<std::unique_ptr<Lexicon>> lexicon = Lexicon::Parse(text);
  EXPECT_TRUE(lexicon.ok()) << lexicon.status();
  return lexicon.ok() ? *std::move(lexicon) : nullptr;
}

TEST(LexiconParseTest, ReadsEverySection) {
  std::unique_ptr<Lexicon> lexicon = ParseOrDie(kSmall);
  ASSERT_NE(lexicon, nullptr);
  EXPECT_EQ(lexicon->lemma_count(), 9u);
  EXPECT_TRUE(lexicon->IsLemma("hotel"));
  EXPECT_FALSE(lexicon->IsLemma("hotels"));
  EXPECT_FALSE(lexicon->IsLemma("went"));

  EXPECT_TRUE(lexicon->AreSynonyms("book", "reserve"));  // share synset 2
  EXPECT_TRUE(lexicon->AreSynonyms("reserve", "book"));
  EXPECT_FALSE(lexicon->AreSynonyms("book", "hotel"));
  EXPECT_TRUE(lexicon->AreSynonyms("hotel", "hotel"));
  EXPECT_TRUE(lexicon->AreSynonyms("zzz", "zzz"));  // equal words
  EXPECT_FALSE(lexicon->AreSynonyms("book", "zzz"));

  EXPECT_TRUE(lexicon->AreAntonyms("up", "down"));
  EXPECT_TRUE(lexicon->AreAntonyms("down", "up"));
  EXPECT_FALSE(lexicon->AreAntonyms("up", "up"));
  EXPECT_FALSE(lexicon->AreAntonyms("book", "reserve"));

  EXPECT_TRUE(lexicon->AreDerivationallyRelated("reserve", "book"));
  EXPECT_FALSE(lexicon->AreDerivationallyRelated("book", "book"));

  EXPECT_EQ(lexicon->Lemma("went"), "go");
  EXPECT_EQ(lexicon->Lemma("hotels"), "hotel");
  EXPECT_EQ(lexicon->Lemma("running"), "run");
  EXPECT_EQ(lexicon->Lemma("colour"), "color");
  EXPECT_EQ(lexicon->Lemma("colours"), "color");
  EXPECT_EQ(lexicon->Lemma("colors"), "color");
  EXPECT_EQ(lexicon->Lemma("hotel"), "hotel");
  EXPECT_EQ(lexicon->Lemma("unknownish"), "unknownish");
  EXPECT_EQ(lexicon->Lemma(""), "");
}

TEST(LexiconParseTest, EmptyTextIsAnEmptyLexicon) {
  std::unique_ptr<Lexicon> lexicon = ParseOrDie("");
  ASSERT_NE(lexicon, nullptr);
  EXPECT_EQ(lexicon->lemma_count(), 0u);
  EXPECT_EQ(lexicon->Lemma("went"), "went");
}

TEST(LexiconParseTest, MalformedInputNamesTheLine) {
  struct Case {
    absl::string_view text;
    absl::string_view message;
  };
  const Case kCases[] = {
      {"book\n", "line 1: record outside a section"},
      {"[lemmas]\n[nouns]\n", "line 2: unknown section"},
      {"[antonyms]\n[lemmas]\n", "line 2: section out of order"},
      {"[lemmas]\n[lemmas]\n", "line 2: section out of order"},
      {"[lemmas]\nBook\n", "line 2: not a lowercase word"},
      {"[lemmas]\nbook x\n", "line 2: bad synset id"},
      {"[lemmas]\nbook -1\n", "line 2: bad synset id"},
      {"[lemmas]\nbook  1\n", "line 2: empty field"},
      {"[lemmas]\nbook \n", "line 2: empty field"},
      {"[lemmas]\nbook\nbook\n", "line 3: duplicate lemma"},
      {"[lemmas]\nup\n[antonyms]\nup down\n", "line 4: not a lemma"},
      {"[lemmas]\nup\n[antonyms]\nup\n", "line 4: expected two words"},
      {"[lemmas]\nup\n[antonyms]\nup up\n", "line 4: a word paired with"},
      {"[lemmas]\ngo\n[exceptions]\nwent gone\n", "line 4: not a lemma"},
      {"[lemmas]\ngo\n[exceptions]\nwent go\nwent go\n",
       "line 5: duplicate word"},
      {"[lemmas]\ngo\n[exceptions]\nWent go\n", "line 4: not a lowercase"},
      {"[lemmas]\na\nb\nc\n[spellings]\na b\nb c\n", "spelling chain"},
      {"[lemmas]\nbook\r\n", "line 2: not a lowercase word"},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<std::unique_ptr<Lexicon>> lexicon = Lexicon::Parse(c.text);
    ASSERT_FALSE(lexicon.ok()) << c.text;
    EXPECT_EQ(lexicon.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(lexicon.status().message(), c.message))
        << lexicon.status() << " for " << c.text;
  }
}

// The shipped lexicon. Each expectation was checked against WordNet 3.0.
class DefaultLexiconTest : public ::testing::Test {
 protected:
  const Lexicon& lexicon_ = Lexicon::Default();
};

TEST_F(DefaultLexiconTest, IsLoaded) {
  EXPECT_GT(lexicon_.lemma_count(), 80000u);
  EXPECT_EQ(&Lexicon::Default(), &lexicon_);  // parsed once
  EXPECT_TRUE(lexicon_.IsLemma("hotel"));
  EXPECT_TRUE(lexicon_.IsLemma("email"));  // "e-mail" without its hyphen
  EXPECT_FALSE(lexicon_.IsLemma("hotels"));
  EXPECT_FALSE(lexicon_.IsLemma("hot_dog"));
}

TEST_F(DefaultLexiconTest, Lemma) {
  // Irregular forms (*.exc), also over the word's own lemma ("better").
  EXPECT_EQ(lexicon_.Lemma("went"), "go");
  EXPECT_EQ(lexicon_.Lemma("children"), "child");
  EXPECT_EQ(lexicon_.Lemma("better"), "good");
  EXPECT_EQ(lexicon_.Lemma("mice"), "mouse");
  EXPECT_EQ(lexicon_.Lemma("does"), "do");  // not "doe"
  // Suffix rules.
  EXPECT_EQ(lexicon_.Lemma("running"), "run");
  EXPECT_EQ(lexicon_.Lemma("stopped"), "stop");
  EXPECT_EQ(lexicon_.Lemma("hoping"), "hope");
  EXPECT_EQ(lexicon_.Lemma("hotels"), "hotel");
  EXPECT_EQ(lexicon_.Lemma("stories"), "story");
  EXPECT_EQ(lexicon_.Lemma("cookies"), "cookie");
  EXPECT_EQ(lexicon_.Lemma("boxes"), "box");
  EXPECT_EQ(lexicon_.Lemma("crosses"), "cross");
  EXPECT_EQ(lexicon_.Lemma("studied"), "study");
  EXPECT_EQ(lexicon_.Lemma("died"), "die");
  EXPECT_EQ(lexicon_.Lemma("bigger"), "big");
  EXPECT_EQ(lexicon_.Lemma("happiest"), "happy");
  EXPECT_EQ(lexicon_.Lemma("women"), "woman");
  // -ing/-ed words that are lemmas themselves, yet forms of a verb.
  EXPECT_EQ(lexicon_.Lemma("making"), "make");
  EXPECT_EQ(lexicon_.Lemma("booking"), "book");
  EXPECT_EQ(lexicon_.Lemma("reserved"), "reserve");
  // ... but not every such word.
  EXPECT_EQ(lexicon_.Lemma("evening"), "evening");
  EXPECT_EQ(lexicon_.Lemma("need"), "need");
  EXPECT_EQ(lexicon_.Lemma("news"), "news");
  EXPECT_EQ(lexicon_.Lemma("species"), "species");
  // Listed irregular forms that are mostly words of their own.
  EXPECT_EQ(lexicon_.Lemma("ground"), "ground");  // not "grind"
  EXPECT_EQ(lexicon_.Lemma("offer"), "offer");    // not "off" (adj.exc)
  EXPECT_EQ(lexicon_.Lemma("feed"), "feed");      // not "fee"
  // Spelling variants.
  EXPECT_EQ(lexicon_.Lemma("colour"), lexicon_.Lemma("color"));
  EXPECT_EQ(lexicon_.Lemma("colour"), "color");
  EXPECT_EQ(lexicon_.Lemma("colours"), lexicon_.Lemma("colors"));
  EXPECT_EQ(lexicon_.Lemma("organise"), "organize");
  EXPECT_EQ(lexicon_.Lemma("organised"), "organize");
  EXPECT_EQ(lexicon_.Lemma("analyse"), "analyze");
  EXPECT_EQ(lexicon_.Lemma("centre"), "center");
  EXPECT_EQ(lexicon_.Lemma("centres"), "center");
  EXPECT_EQ(lexicon_.Lemma("travelling"), "travel");
  EXPECT_EQ(lexicon_.Lemma("prioritised"), "prioritize");  // not in WordNet
  // Unknown words come back unchanged.
  EXPECT_EQ(lexicon_.Lemma("kubernetes"), "kubernetes");
  EXPECT_EQ(lexicon_.Lemma(std::string(100, 'a')), std::string(100, 'a'));
}

TEST_F(DefaultLexiconTest, Synonyms) {
  EXPECT_TRUE(lexicon_.AreSynonyms("car", "automobile"));
  EXPECT_TRUE(lexicon_.AreSynonyms("automobile", "car"));
  EXPECT_TRUE(lexicon_.AreSynonyms("buy", "purchase"));
  EXPECT_TRUE(lexicon_.AreSynonyms("start", "begin"));
  EXPECT_TRUE(lexicon_.AreSynonyms("big", "large"));
  EXPECT_TRUE(lexicon_.AreSynonyms("error", "mistake"));
  EXPECT_TRUE(lexicon_.AreSynonyms("phone", "telephone"));
  EXPECT_TRUE(lexicon_.AreSynonyms("majuscule", "uppercase"));
  // "capital" means an uppercase letter in its 4th noun sense only.
  EXPECT_FALSE(lexicon_.AreSynonyms("capital", "majuscule"));
  // Reserve's "book" sense is its 4th verb sense, untagged in SemCor, so
  // the frequent-sense filter drops it.
  EXPECT_FALSE(lexicon_.AreSynonyms("book", "reserve"));
  EXPECT_FALSE(lexicon_.AreSynonyms("increase", "decrease"));
  EXPECT_FALSE(lexicon_.AreSynonyms("car", "hotel"));
  EXPECT_FALSE(lexicon_.AreSynonyms("car", "notaword"));
}

TEST_F(DefaultLexiconTest, Antonyms) {
  EXPECT_TRUE(lexicon_.AreAntonyms("increase", "decrease"));
  EXPECT_TRUE(lexicon_.AreAntonyms("decrease", "increase"));
  EXPECT_TRUE(lexicon_.AreAntonyms("ascend", "descend"));
  EXPECT_TRUE(lexicon_.AreAntonyms("enable", "disable"));
  EXPECT_TRUE(lexicon_.AreAntonyms("start", "stop"));
  EXPECT_TRUE(lexicon_.AreAntonyms("buy", "sell"));
  EXPECT_TRUE(lexicon_.AreAntonyms("hot", "cold"));
  EXPECT_TRUE(lexicon_.AreAntonyms(lexicon_.Lemma("enabled"),
                                   lexicon_.Lemma("disabled")));
  EXPECT_FALSE(lexicon_.AreAntonyms("increase", "grow"));
  EXPECT_FALSE(lexicon_.AreAntonyms("car", "automobile"));
  EXPECT_FALSE(lexicon_.AreAntonyms("increase", "increase"));
}

TEST_F(DefaultLexiconTest, Derivations) {
  EXPECT_TRUE(lexicon_.AreDerivationallyRelated("reservation", "reserve"));
  EXPECT_TRUE(lexicon_.AreDerivationallyRelated("reserve", "reservation"));
  EXPECT_FALSE(lexicon_.AreDerivationallyRelated("reserve", "hotel"));
}

}  // namespace
}  // namespace promptcache::internal

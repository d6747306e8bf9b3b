// The match decision: the conflict veto, the match features, the logistic
// fit and the shipped calibration.
#include "semantic/match_decision.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/match_calibration.h"
#include "semantic/conflict_veto.h"
#include "semantic/lexicon.h"
#include "semantic/logistic_fit.h"
#include "semantic/match_features.h"
#include "semantic/prompt_analysis.h"
#include "semantic/text_features.h"

namespace promptcache {
namespace {

using internal::Lexicon;

std::string Conflict(const std::string& a, const std::string& b) {
  const Lexicon& lexicon = Lexicon::Default();
  const internal::PromptAnalysis pa = internal::AnalyzePrompt(a, lexicon);
  const internal::PromptAnalysis pb = internal::AnalyzePrompt(b, lexicon);
  return internal::FindConflict(a, pa, b, pb, lexicon);
}

TEST(ConflictVetoTest, HardDifferencesAreVetoedBothWays) {
  const std::pair<const char*, const char*> conflicts[] = {
      {"Find flights to Rome next week", "Find flights to Milan next week"},
      {"Is 10 mg of melatonin safe?", "Is 100 mg of melatonin safe?"},
      {"How do I start the nginx service?", "How do I stop the nginx service?"},
      {"convert 20 GBP to JPY", "convert 20 JPY to GBP"},
      {"What's new in Python 3.11?", "What's new in Python 3.12?"},
      {"Can I cancel my order?", "Can't I cancel my order?"},
      {"How do I enable two-factor auth?", "How do I disable two-factor auth?"},
      {"Call `fetch_user` with id 3", "Call `fetch_users` with id 3"},
      {"Send $50 to Alice", "Send $50 to Bob"},
      {"Meeting on Monday at 5pm", "Meeting on Tuesday at 5pm"},
      {"Is it safe to take ibuprofen with alcohol?",
       "Is it safe to take ibuprofen without alcohol?"},
      {"Sort the list in ascending order", "Sort the list in descending order"},
      {"I want to upload a file", "I want to download a file"},
      {"I forgot my password, how can I log in?",
       "I forgot my password, how can I log out?"},
      {"How do I turn on dark mode?", "How do I turn off dark mode?"},
      {"What's the weather next Friday?", "What's the weather last Friday?"},
      {"cheapest flights from Paris to Rome",
       "cheapest flights to Paris from Rome"},
      {"I need forty tickets for the concert",
       "I need sixty tickets for the concert"},
      // Operators, as symbols and as words.
      {"What is 12 + 7?", "What is 12 - 7?"},
      {"what is 12 plus 7", "what is 12 minus 7"},
      {"compute 6 * 4", "compute 6 / 4"},
      {"is x > y in this case", "is x < y in this case"},
      {"Is 5 greater than 3?", "Is 5 less than 3?"},
      // Number words that count stay numbers; a plain "No" still negates;
      // both sides marking directions keep them.
      {"Take the pill once a day", "Take the pill twice a day"},
      {"How do I buy one can of paint", "How do I buy two cans of paint"},
      {"Who finished first in the race?", "Who finished second in the race?"},
      {"I have been to Paris once", "I have been to Paris twice"},
      {"Can one person have two accounts?", "Can two people have one account?"},
      {"No refund was issued", "A refund was issued"},
      {"convert Python code to Java", "convert Java code to Python"},
      {"How do I migrate from MySQL to Postgres?",
       "How do I migrate from Postgres to MySQL?"},
      {"How do I switch to iPhone?", "How do I switch from iPhone?"},
      {"train from Berlin", "train to Berlin"},
      // A thing placed by a preposition, or standing alone, is not a
      // direction left unsaid.
      {"How much is an Uber to LaGuardia?",
       "How much is an Uber at LaGuardia?"},
      {"How do I forward emails to Gmail?",
       "How do I forward emails in Gmail?"},
      {"How much does it cost to call Mexico?",
       "How much does it cost to call from Mexico?"},
      {"manage repositories from your Python runtime",
       "manage repositories within a Python environment"},
      {"Does it work in Python v3.11?", "Does it work in Python 3.12?"},
      {"Take it once a day", "Take it twice a day"},
      {"Once a day, take one pill", "Twice a day, take one pill"},
      {"enter your first name", "enter your last name"},
      {"fly first class to Paris", "fly second class to Paris"},
      {"How many ounces are in one cup?", "How many ounces are in two cups?"},
      {"Is it okay to have one child?", "Is it okay to have a child?"},
      {"rent for a 1 bedroom 2 bath in Austin",
       "rent for a 2 bedroom 1 bath in Austin"},
      {"How do I upgrade to Windows 11 Pro?",
       "How do I upgrade Windows 11 Pro?"},
      {"How do I upload to a Google Photos album?",
       "How do I upload a Google Photos album?"},
      {"convert 1 kg to pounds", "convert 1 lb to pounds"},
      {"what is one plus two", "what is two plus one"},
      {"Is step 1 of the setup optional?", "Is step 2 of the setup optional?"},
      {"I want one or two tickets", "I want two or three tickets"},
      // WordNet antonyms.
      {"How do I increase the font size?", "How do I decrease the font size?"},
      {"advantages of remote work", "disadvantages of remote work"},
      {"Is the store open on holidays?", "Is the store closed on holidays?"},
      // Languages whose names differ by a suffix.
      {"best IDE for C++", "best IDE for C#"},
      // Tense, persons, direction past "the", units of one group.
      {"when did the war end", "when will the war end"},
      {"how much do I owe you", "how much do you owe me"},
      {"how do I get from the airport to the city",
       "how do I get to the airport from the city"},
      {"convert 10 km to miles", "convert 10 cm to miles"},
      // Whose thing, whose state.
      {"what is my name", "what is your name"},
      {"could you tell me my name", "could you tell me your name"},
      {"show me my recent transactions", "show me your recent transactions"},
      {"what's your IP address", "what's my IP address"},
      {"where am I", "where are you"},
      {"how old am I", "how old are you?"},
      {"I'm bored", "You're bored"},
      {"Was I right?", "Were you right?"},
      {"How are you doing today?", "How am I doing today?"},
      // What one must against what one may.
      {"Do I have to verify my identity?", "Can I verify my identity?"},
      {"Must I register to vote?", "May I register to vote?"},
      // A shared passage must not outvote the question that differs.
      {"Context: Webhooks are signed with HMAC-SHA256 using your signing "
       "secret; endpoints must answer within 10 seconds or the delivery is "
       "retried with backoff for up to three days, and every delivery is "
       "listed in the audit log with its status.\nQuestion: how do i verify "
       "webhook signatures",
       "Context: Webhooks are signed with HMAC-SHA256 using your signing "
       "secret; endpoints must answer within 10 seconds or the delivery is "
       "retried with backoff for up to three days, and every delivery is "
       "listed in the audit log with its status.\nQuestion: What timeout do "
       "webhook endpoints have?"},
  };
  for (const auto& [a, b] : conflicts) {
    EXPECT_NE(Conflict(a, b), "") << a << " | " << b;
    EXPECT_NE(Conflict(b, a), "") << "symmetric: " << b << " | " << a;
  }
}

TEST(ConflictVetoTest, RewordingsAreNotVetoed) {
  const std::pair<const char*, const char*> rewrites[] = {
      {"Capital of Canada", "What is the capital city of Canada?"},
      {"python sort list ascending", "how to sort a list in python ascending"},
      {"weather in Berlin today", "today's weather in Berlin"},
      {"book a hotel in Paris for two adults",
       "reserve a hotel room in Paris for 2 adults"},
      {"How do I change my email address",
       "How can I change my e-mail address?"},
      {"convert 20 GBP to JPY", "Convert 20 GBP into JPY please"},
      {"cheapest flights from Paris to Rome",
       "cheapest flights to Rome from Paris"},
      {"What is 12 + 7?", "what is 12 plus 7"},
      {"Is 10 mg of melatonin safe?", "is 10mg of melatonin safe"},
      {"What colour is the sky", "what color is the sky"},
      {"I can't log in", "I cannot log in"},
      {"How can I login to the dashboard?",
       "how do i log in to the dashboard?"},
      // A generic "you" is the asker; framing persons do not count; a thing
      // of both sides is not a swap; "our" is left alone.
      {"how do I reset my password", "how do you reset your password"},
      {"How to reset your password", "how to reset my password"},
      {"Tips to improve your sleep", "tips to improve my sleep"},
      {"What happens if you lose your card?",
       "What happens if I lose my card?"},
      {"What is your refund policy?", "What is our refund policy?"},
      {"could you schedule car maintenance for me",
       "can you schedule car maintenance for me"},
      {"Do I need to verify my identity?", "Do I have to verify my identity?"},
      {"How old do I have to be to open an account?",
       "How old do you have to be to open an account?"},
      {"can you tell me my balance", "I want to know my balance"},
      {"Where do you get your exchange rates from?",
       "Where can I get your exchange rates from?"},
      {"I want to track the card you sent",
       "How do I track the card you sent me?"},
      {"Please delete my account. I am not happy with the service.",
       "I would like to delete my account, you're not giving good service"},
      // "I was wondering" is politeness, not the past.
      {"I was wondering what time the store will open tomorrow",
       "what time will the store open tomorrow"},
      {"what's the weather tomorrow", "what will the weather be tomorrow"},
      // Number words that count nothing: the pronoun "one", the
      // conjunction "once", the adverb "first"; an answer "No," before the
      // sentence it agrees with.
      {"How can one reset a forgotten password?",
       "How can I reset a forgotten password?"},
      {"One should back up the database before upgrading.",
       "You should back up the database before upgrading."},
      {"Once the download finishes, how do I install it?",
       "When the download finishes, how do I install it?"},
      {"Can I delete all the files at once?", "Can I delete all the files?"},
      {"Ask users to share their contact details first, with the Gated "
       "feature.",
       "Ask users to share their contact details with the Gated feature."},
      {"Once installed, how do I run it?", "When installed, how do I run it?"},
      {"Does it work in Python v3.11?", "Does it work in Python 3.11?"},
      {"Merge the PDFs into one file", "Merge the PDFs into a single file"},
      {"No, that is not what I asked.", "That is not what I asked."},
      {"No I want to cancel my order", "No, I want to cancel my order"},
      {"Only one can be the account owner, right?",
       "Only 1 can be the account owner, right?"},
      {"Upgrade to v3.11", "Upgrade to 3.11"},
      {"No, it doesn't exist in version 2.10.0.",
       "It is not available in version 2.10.0."},
      // A direction one side leaves unsaid, where the other marks no other.
      {"How do I migrate from MySQL to Postgres?",
       "How do I migrate MySQL to Postgres?"},
      {"cheapest flights to Paris this week",
       "cheapest Paris flights this week"},
      {"How do I switch from iPhone to Android?",
       "How do I switch my iPhone to Android?"},
  };
  for (const auto& [a, b] : rewrites) {
    EXPECT_EQ(Conflict(a, b), "") << a << " | " << b;
  }
}

TEST(PromptAnalysisTest, WordsKnowWhetherAPauseFollows) {
  const std::vector<internal::Word> words =
      internal::SplitWords("No, do it first; then 2.5 mg. Done");
  std::vector<std::string> paused;
  for (const internal::Word& w : words) {
    if (w.pause_after) paused.push_back(w.lower);
  }
  EXPECT_EQ(paused, (std::vector<std::string>{"no", "first", "mg", "done"}));
  // "one" counts in "one can of paint", not in "one can paint".
  const Lexicon& lexicon = Lexicon::Default();
  EXPECT_EQ(internal::AnalyzePrompt("one can of paint", lexicon).numbers,
            std::vector<std::string>{"1"});
  EXPECT_TRUE(
      internal::AnalyzePrompt("one can paint", lexicon).numbers.empty());
  EXPECT_TRUE(
      internal::AnalyzePrompt("once it ends, stop", lexicon).numbers.empty());
  EXPECT_EQ(internal::AnalyzePrompt("stop once it ends", lexicon).numbers,
            std::vector<std::string>{});
  EXPECT_EQ(internal::AnalyzePrompt("once a day", lexicon).numbers,
            std::vector<std::string>{"1x"});
  EXPECT_TRUE(
      internal::AnalyzePrompt("Once Docker is installed, run it", lexicon)
          .numbers.empty());
  EXPECT_TRUE(internal::AnalyzePrompt(
                  "what should I do first after an accident", lexicon)
                  .numbers.empty());
  EXPECT_EQ(internal::AnalyzePrompt("No thanks", lexicon).negations, 0);
  EXPECT_EQ(internal::AnalyzePrompt("No I want to cancel", lexicon).negations,
            0);
  // "one" before its noun counts: "have one child" is not "have a child".
  EXPECT_EQ(internal::AnalyzePrompt("ounces in one cup", lexicon).numbers,
            std::vector<std::string>{"1"});
  EXPECT_EQ(internal::AnalyzePrompt("step 1 setup", lexicon).numbers,
            std::vector<std::string>{"1"});
  EXPECT_EQ(internal::AnalyzePrompt("one or two", lexicon).numbers,
            (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(internal::AnalyzePrompt("No, it is", lexicon).negations, 0);
  EXPECT_EQ(internal::AnalyzePrompt("No it is not", lexicon).negations, 2);
}

TEST(PromptAnalysisTest, NumberSignatureReadsNumbersInOrder) {
  using internal::NumberSignature;
  EXPECT_EQ(NumberSignature("2 tickets to Rome"),
            NumberSignature("two tickets to Rome please"));
  EXPECT_NE(NumberSignature("10 mg"), NumberSignature("100 mg"));
  EXPECT_NE(NumberSignature("20 to 30"), NumberSignature("30 to 20"));
  EXPECT_EQ(NumberSignature("no numbers"), NumberSignature("none here"));
}

TEST(PromptAnalysisTest, QuestionFormsAreNormalised) {
  const Lexicon& lexicon = Lexicon::Default();
  const auto kind = [&](const char* text) {
    return internal::AnalyzePrompt(text, lexicon).question_kind;
  };
  EXPECT_EQ(kind("how do I sort a list"), "how");
  EXPECT_EQ(kind("What is the best way to sort a list?"), "how");
  EXPECT_EQ(kind("explain recursion"), "what");
  EXPECT_EQ(kind("What is recursion?"), "what");
  EXPECT_EQ(kind("why is the sky blue"), "why");
  EXPECT_EQ(kind("what is the reason the sky is blue"), "why");
  EXPECT_EQ(kind("when was Rome founded"), "when");
  EXPECT_EQ(kind("what time does the store open"), "when");
  EXPECT_EQ(kind("what day is it"), "when");
  // A time or date that names a thing asks what.
  EXPECT_EQ(kind("What's the time complexity of quicksort?"), "what");
  EXPECT_EQ(kind("what date format does ISO 8601 use"), "what");
  EXPECT_EQ(kind("reset my password"), "");
  EXPECT_EQ(kind("Can I get a refund?"), "yes-no");
  EXPECT_EQ(kind("please, can I get a refund"), "yes-no");
  EXPECT_EQ(kind("can you tell me how to get a refund"), "how");
}

TEST(MatchFeaturesTest, SymmetricAndBounded) {
  const Lexicon& lexicon = Lexicon::Default();
  const std::pair<const char*, const char*> pairs[] = {
      {"book a hotel in Paris", "reserve a hotel room in Paris"},
      {"how to cook rice", "how to cook pasta quickly"},
      {"the cat sat on the mat", "on the mat sat the cat"},
  };
  for (const auto& [a, b] : pairs) {
    const auto pa = internal::AnalyzePrompt(a, lexicon);
    const auto pb = internal::AnalyzePrompt(b, lexicon);
    const internal::MatchFeatures ab =
        internal::ComputeMatchFeatures(pa, pb, 0.7, lexicon);
    const internal::MatchFeatures ba =
        internal::ComputeMatchFeatures(pb, pa, 0.7, lexicon);
    for (int i = 0; i < internal::kNumMatchFeatures; ++i) {
      EXPECT_NEAR(ab[i], ba[i], 1e-12)
          << internal::MatchFeatureNames()[i] << ": " << a << " | " << b;
      EXPECT_TRUE(std::isfinite(ab[i]));
    }
    EXPECT_GE(ab[internal::kCoverMin], 0);
    EXPECT_LE(ab[internal::kCoverMin], 1);
  }
  // Synonyms count as covered: "car" ~ "automobile" (WordNet).
  const auto pa = internal::AnalyzePrompt("wash a car", lexicon);
  const auto pb = internal::AnalyzePrompt("wash an automobile", lexicon);
  const internal::MatchFeatures f =
      internal::ComputeMatchFeatures(pa, pb, 0.5, lexicon);
  EXPECT_EQ(f[internal::kCoverMin], 1);
  EXPECT_GT(f[internal::kSynonymShare], 0);
  // Two real words one letter apart are two words, not a typo.
  {
    const auto pm = internal::AnalyzePrompt("clean my mouse", lexicon);
    const auto ph = internal::AnalyzePrompt("clean my house", lexicon);
    EXPECT_LT(internal::ComputeMatchFeatures(pm, ph, 0.7,
                                             lexicon)[internal::kCoverMin],
              1);
    const auto pt = internal::AnalyzePrompt("clean my mosue", lexicon);
    EXPECT_EQ(internal::ComputeMatchFeatures(pm, pt, 0.7,
                                             lexicon)[internal::kCoverMin],
              1);
  }
  // Two adjacent words written as one are covered, both ways; the same
  // words apart are not.
  {
    const auto cover = [&](const char* a, const char* b) {
      return internal::ComputeMatchFeatures(internal::AnalyzePrompt(a, lexicon),
                                            internal::AnalyzePrompt(b, lexicon),
                                            0.7, lexicon)[internal::kCoverMin];
    };
    EXPECT_EQ(
        cover("how do I change my username", "how do I change my user name"),
        1);
    EXPECT_EQ(cover("split a dataset in python", "split a data set in python"),
              1);
    EXPECT_LT(cover("change my username", "change the name of my user"), 1);
    // Two words whose joining is a word of its own are another thing.
    EXPECT_LT(
        cover("how to clean car pet stains", "how to clean carpet stains"), 1);
    EXPECT_LT(
        cover("how do I cool down a hot dog", "how do I cool down a hotdog"),
        1);
    // A split-off "'s" joins nothing.
    EXPECT_LT(cover("Tim , the brother of Tod , is the chief officer",
                    "Tim 's brother , Tod , is the chief officer"),
              1);
  }
  // A substitution is not covered.
  const auto pc = internal::AnalyzePrompt("how to cook rice", lexicon);
  const auto pd = internal::AnalyzePrompt("how to cook pasta", lexicon);
  const internal::MatchFeatures g =
      internal::ComputeMatchFeatures(pc, pd, 0.5, lexicon);
  EXPECT_EQ(g[internal::kSubstituted], 1);
  EXPECT_LT(g[internal::kCoverMin], 1);
}

// Word order: a lone time adverb at either end may move ("weather in
// Berlin today" / "today's weather in Berlin"); everything else that moves
// counts as a swap, compared on stems without direction markers, a
// repeated word's k-th occurrence against the other side's k-th.
TEST(MatchFeaturesTest, AnIngNounIsNotItsVerbsOtherNoun) {
  const Lexicon& lexicon = Lexicon::Default();
  const auto analyze = [&](const char* text) {
    return internal::AnalyzePrompt(text, lexicon);
  };
  const auto cover = [&](const char* a, const char* b) {
    return internal::ComputeMatchFeatures(analyze(a), analyze(b), 0.7,
                                          lexicon)[internal::kCoverMin];
  };
  const std::pair<const char*, const char*> different[] = {
      {"what is the rating of this movie", "what is the rate of this movie"},
      {"how long is the training", "how long is the train"},
      {"where is the parking", "where is the park"},
      {"I need help with my booking", "I need help with my book"},
  };
  for (const auto& [a, b] : different) {
    EXPECT_LT(cover(a, b), 1) << a << " | " << b;
    EXPECT_LT(cover(b, a), 1) << b << " | " << a;
    EXPECT_FALSE(internal::IsSurfaceRewrite(analyze(a), analyze(b)))
        << a << " | " << b;
  }
  // A verb, a noun that qualifies another, a plural, a progressive verb.
  const std::pair<const char*, const char*> same[] = {
      {"hotel booking in Paris", "book a hotel in Paris"},
      {"what is the cooking time for rice", "what is the cook time for rice"},
      {"show my booking", "show my bookings"},
      {"why is my phone charging so slowly",
       "why does my phone charge so slowly"},
  };
  for (const auto& [a, b] : same) {
    EXPECT_EQ(cover(a, b), 1) << a << " | " << b;
    EXPECT_EQ(cover(b, a), 1) << b << " | " << a;
  }
  // Identical text with both nouns in it stays a surface rewrite.
  EXPECT_TRUE(internal::IsSurfaceRewrite(
      analyze("Summarize: the booking system is down, see the book page."),
      analyze("summarize: The booking system is down, see the book page")));
}

TEST(MatchFeaturesTest, WordOrder) {
  const Lexicon& lexicon = Lexicon::Default();
  const auto features = [&](const char* a, const char* b) {
    return internal::ComputeMatchFeatures(internal::AnalyzePrompt(a, lexicon),
                                          internal::AnalyzePrompt(b, lexicon),
                                          0.7, lexicon);
  };
  const std::pair<const char*, const char*> same_order[] = {
      {"weather in Berlin today", "today's weather in Berlin"},
      {"now what is the weather in Paris", "what is the weather in Paris now"},
  };
  for (const auto& [a, b] : same_order) {
    const internal::MatchFeatures f = features(a, b);
    EXPECT_EQ(f[internal::kOrderSwaps], 0) << a << " | " << b;
    EXPECT_EQ(f[internal::kHardOrderSwaps], 0) << a << " | " << b;
  }
  const std::pair<const char*, const char*> swapped[] = {
      {"how to move a file in a folder", "how to move a folder in a file"},
      {"how to run linux in windows", "how to run windows on linux"},
      {"how to store passwords in a database",
       "how to store a database password"},
      {"how to run python in docker", "how to run docker from python"},
      {"convert python to java", "convert java to python"},
      {"find a string in a list", "find a list of strings"},
      {"convert a list of strings to a string of lists",
       "convert a string of lists to a list of strings"},
      {"how many cups in a pint and how many pints in a quart",
       "how many pints in a cup and how many quarts in a pint"},
      {"today is monday, what day is tomorrow",
       "tomorrow is monday, what day is today"},
      // A time adverb inside the sentence may belong to either clause.
      {"book a table tonight for the weekend",
       "book a table on the weekend for tonight"},
  };
  for (const auto& [a, b] : swapped) {
    const internal::MatchFeatures f = features(a, b);
    EXPECT_GT(f[internal::kOrderSwaps] + f[internal::kHardOrderSwaps], 0)
        << a << " | " << b;
  }
  // A word written more often than the other side has it is unaccounted.
  EXPECT_LT(features("how to create a table in a table in html",
                     "how to create an html table")[internal::kCoverMin],
            1);
}

TEST(LogisticFitTest, RecoversASeparatingDirectionDeterministically) {
  std::vector<internal::FitExample> examples;
  for (int i = 0; i < 400; ++i) {
    const double x = (i % 100) / 100.0;
    const double noise = ((i * 7919) % 13) / 130.0;
    examples.push_back({{x, noise}, x + noise / 2 > 0.55, 1.0});
  }
  absl::StatusOr<internal::LogisticModel> a = internal::FitLogistic(examples);
  absl::StatusOr<internal::LogisticModel> b = internal::FitLogistic(examples);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->weights, b->weights);
  EXPECT_EQ(a->bias, b->bias);
  EXPECT_GT(a->weights[0], 0);
  // The decision boundary lands near x = 0.55 for no noise.
  const double p_lo = 1 / (1 + std::exp(-(a->bias + a->weights[0] * 0.3)));
  const double p_hi = 1 / (1 + std::exp(-(a->bias + a->weights[0] * 0.8)));
  EXPECT_LT(p_lo, 0.2);
  EXPECT_GT(p_hi, 0.8);

  EXPECT_FALSE(internal::FitLogistic({}).ok());
  EXPECT_FALSE(internal::FitLogistic({{{1.0}, true, 1.0}}).ok());
  EXPECT_FALSE(
      internal::FitLogistic({{{NAN}, true, 1.0}, {{0.0}, false, 1.0}}).ok());
}

TEST(MatchCalibrationTest, ParsesValidatesAndInterpolates) {
  MatchCalibration c;
  c.embedder = "e";
  c.features = MatchFeatureNameList();
  c.weights.assign(c.features.size(), 0.5);
  c.bias = -1;
  c.cuts = {{0.001, 0.99}, {0.01, 0.9}, {0.1, 0.7}};
  absl::StatusOr<MatchCalibration> back =
      MatchCalibration::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->weights, c.weights);
  EXPECT_NEAR(*back->CutFor(0.01), 0.9, 1e-12);
  EXPECT_GT(*back->CutFor(0.005), 0.9);
  EXPECT_LT(*back->CutFor(0.005), 0.99);
  EXPECT_NEAR(*back->CutFor(0.3), 0.7, 1e-12);
  EXPECT_FALSE(back->CutFor(0.0001).ok());
  EXPECT_FALSE(back->CutFor(0).ok());
  EXPECT_FALSE(back->CutFor(NAN).ok());

  EXPECT_FALSE(MatchCalibration::FromJson("{").ok());
  EXPECT_FALSE(MatchCalibration::FromJson("[]").ok());
  std::string wrong = c.ToJson();
  wrong.replace(wrong.find("cosine"), 6, "cosinX");
  EXPECT_FALSE(MatchCalibration::FromJson(wrong).ok());
  MatchCalibration unordered = c;
  std::swap(unordered.cuts[0], unordered.cuts[1]);
  EXPECT_FALSE(MatchCalibration::FromJson(unordered.ToJson()).ok());
  EXPECT_FALSE(MatchCalibration::FromFile("/nonexistent/cal.json").ok());
  EXPECT_EQ(MatchCalibration::Shipped("no-such-embedder").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(MatchDecisionTest, ShippedCalibrationServesRewritesAndRefusesLookAlikes) {
  BuiltinEmbedder embedder;
  absl::StatusOr<MatchCalibration> c =
      MatchCalibration::Shipped(embedder.name());
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<double> cut = c->CutFor(0.01);
  ASSERT_TRUE(cut.ok());
  internal::MatchRule rule;
  rule.calibration = &*c;
  rule.cut = *cut;
  rule.similarity_floor = internal::SimilarityFloor(*c, *cut);
  // A bound, never above a similarity the calibration can serve.
  EXPECT_LT(rule.similarity_floor, 0.9);
  const auto decide = [&](const std::string& a, const std::string& b) {
    std::vector<float> v;
    EXPECT_TRUE(embedder.Embed({a, b}, &v).ok());
    double cosine = 0;
    for (int i = 0; i < embedder.dimension(); ++i) {
      cosine += double{v[i]} * v[i + embedder.dimension()];
    }
    internal::MatchDecider decider(a, rule, Lexicon::Default());
    return decider.Decide(b, cosine);
  };
  // Served at the default with a margin (bench/README.md lists where the
  // shipped calibration puts common rewrites).
  const std::pair<const char*, const char*> rewrites[] = {
      {"Explain recursion", "What is recursion?"},
      {"weather in Berlin today", "today's weather in Berlin"},
      {"How do I install numpy?", "how to install numpy"},
      {"symptoms of the flu", "What are the symptoms of flu?"},
  };
  for (const auto& [a, b] : rewrites) {
    const internal::MatchDecision d = decide(a, b);
    EXPECT_TRUE(d.serve) << a << " | " << b << ": " << d.Explain();
  }
  const std::pair<const char*, const char*> look_alikes[] = {
      {"flights to rome", "flights to milan"},
      // No content words to compare: similarity must carry it.
      {"can you help me", "can you tell me"},
      {"how do I clean my mouse", "how do I clean my house"},
      {"how to cook rice", "how to cook pasta"},
      {"What is 12 + 7?", "What is 12 - 7?"},
      {"How do I start the nginx service?", "How do I stop the nginx service?"},
      {"how to move a file in a folder", "how to move a folder in a file"},
      {"what time does the store open today",
       "what time does the store open tomorrow"},
      {"how to run linux in windows", "how to run windows on linux"},
      {"if today is Friday what day was yesterday",
       "if yesterday was Friday what day is today"},
      {"how to store passwords in a database",
       "how to store a database password"},
      {"how many cups in a pint and how many pints in a quart",
       "how many pints in a cup and how many quarts in a pint"},
      {"book a table tonight for the weekend",
       "book a table on the weekend for tonight"},
      // An -ing noun and its verb's other noun: one lemma, two things.
      {"what is the rating of this movie", "what is the rate of this movie"},
      {"how long is the training", "how long is the train"},
      {"where is the parking", "where is the park"},
  };
  for (const auto& [a, b] : look_alikes) {
    const internal::MatchDecision d = decide(a, b);
    EXPECT_FALSE(d.serve) << a << " | " << b << ": " << d.Explain();
    EXPECT_FALSE(d.Explain().empty());
  }
}

TEST(MatchDecisionTest, SimilarityFloorIsWhereTheBestCaseMeetsTheCut) {
  MatchCalibration c;
  c.embedder = "e";
  c.features = MatchFeatureNameList();
  c.weights.assign(c.features.size(), 0);
  c.weights[internal::kCosine] = 10;
  c.bias = -8;  // score 0.5 at cosine 0.8
  c.cuts = {{0.01, 0.5}};
  EXPECT_NEAR(internal::SimilarityFloor(c, 0.5), 0.8, 1e-6);
  c.weights[internal::kCoverMin] = 2;  // full cover lifts it: floor 0.6
  EXPECT_NEAR(internal::SimilarityFloor(c, 0.5), 0.6, 1e-6);
  EXPECT_EQ(internal::SimilarityFloor(c, 0.99999), 1.0);
}

}  // namespace
}  // namespace promptcache

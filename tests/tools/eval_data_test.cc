// The labeled-data readers of semantic_eval (tools/eval_data.h).
#include "eval_data.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace promptcache::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Rows = std::vector<std::vector<std::string>>;

// Each test writes its files into a fresh directory under TempDir().
class EvalDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "eval_data_test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Writes `content` (bytes as given) to dir_/name; returns the path.
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = Path(name);
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

// Lines of `n` good TSV pairs.
std::string GoodTsv(int n, int first_id = 1) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += std::to_string(first_id + i) + "\tsentence a" + std::to_string(i) +
           "\tsentence b" + std::to_string(i) + "\t" + (i % 2 ? "1" : "0") +
           "\n";
  }
  return out;
}

// ---------------------------------------------------------------- files

TEST_F(EvalDataTest, ReadWholeFileReturnsTheBytes) {
  const std::string bytes("a\r\nb\0c\n\xC3\xA9t\xC3\xA9", 11);
  absl::StatusOr<std::string> got = ReadWholeFile(Write("f.bin", bytes));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  got = ReadWholeFile(Write("empty", ""));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
}

TEST_F(EvalDataTest, ReadWholeFileMissingIsNotFoundNamingThePath) {
  const absl::StatusOr<std::string> got = ReadWholeFile(Path("nope.txt"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr(Path("nope.txt")));
  EXPECT_THAT(got.status().message(), HasSubstr("No such file"));
}

TEST_F(EvalDataTest, ReadWholeFileDirectoryIsAnError) {
  const absl::StatusOr<std::string> got = ReadWholeFile(dir_);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr(dir_ + " is a directory"));
}

TEST_F(EvalDataTest, ReadWholeFileEmptyPathIsAnError) {
  EXPECT_EQ(ReadWholeFile("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EvalDataTest, ReadWholeFileUnreadableIsPermissionDenied) {
  const std::string path = Write("secret.txt", "x");
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  if (access(path.c_str(), R_OK) == 0) {
    GTEST_SKIP() << "running with permission to read a mode-000 file (root)";
  }
  const absl::StatusOr<std::string> got = ReadWholeFile(path);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(got.status().message(), HasSubstr(path));
}

// ---------------------------------------------------------------- CSV

TEST(ParseCsvTest, PlainRecords) {
  const auto rows = ParseCsv("text,category\nhello,greet\nbye,leave\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, ElementsAre(ElementsAre("text", "category"),
                                 ElementsAre("hello", "greet"),
                                 ElementsAre("bye", "leave")));
}

TEST(ParseCsvTest, QuotedCommasAndDoubledQuotes) {
  const auto rows =
      ParseCsv("\"a, b\",c\n\"say \"\"hi\"\"\",\"\"\n\"\"\"\",x\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, ElementsAre(ElementsAre("a, b", "c"),
                                 ElementsAre("say \"hi\"", ""),
                                 ElementsAre("\"", "x")));
}

TEST(ParseCsvTest, QuotedNewlinesStayInTheField) {
  const auto rows = ParseCsv(
      "text,category\n\"\nfirst\n\nline\",card\n\"two\r\nlines\",pin\r\n"
      "last,one\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, ElementsAre(ElementsAre("text", "category"),
                                 ElementsAre("\nfirst\n\nline", "card"),
                                 ElementsAre("two\nlines", "pin"),
                                 ElementsAre("last", "one")));
}

TEST(ParseCsvTest, CrlfLineEndings) {
  const auto rows = ParseCsv("a,b\r\nc,d\r\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, ElementsAre(ElementsAre("a", "b"), ElementsAre("c", "d")));
}

TEST(ParseCsvTest, EmptyLinesLastLineAndEmptyFields) {
  const auto rows = ParseCsv(
      "\xEF\xBB\xBF"
      "a,b\n\n\r\n,\nx,\nlast,line");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows,
              ElementsAre(ElementsAre("a", "b"), ElementsAre("", ""),
                          ElementsAre("x", ""), ElementsAre("last", "line")));
  EXPECT_THAT(*ParseCsv(""), SizeIs(0));
  EXPECT_THAT(*ParseCsv("\n\r\n"), SizeIs(0));
  EXPECT_THAT(*ParseCsv("a,"), ElementsAre(ElementsAre("a", "")));
}

TEST(ParseCsvTest, QuoteInsideAnUnquotedFieldIsLiteral) {
  const auto rows = ParseCsv("5\" disk,it's\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, ElementsAre(ElementsAre("5\" disk", "it's")));
}

TEST(ParseCsvTest, SpacesAfterAClosingQuoteAreAllowed) {
  const auto rows = ParseCsv("\"a\"  ,b\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, ElementsAre(ElementsAre("a", "b")));
}

TEST(ParseCsvTest, UnterminatedQuoteNamesTheLineWhereTheFieldBegan) {
  const auto rows = ParseCsv("a,b\nc,d\ne,\"never\nclosed\nat all\n");
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rows.status().message(),
              HasSubstr("unterminated quoted field starting on line 3"));
}

TEST(ParseCsvTest, TextAfterAClosingQuoteIsAnError) {
  const auto rows = ParseCsv("a,b\n\"two\nlines\" and more,c\n");
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rows.status().message(), HasSubstr("line 3"));
  EXPECT_THAT(rows.status().message(), HasSubstr("closing quote"));
}

// ---------------------------------------------------------------- TSV pairs

TEST_F(EvalDataTest, TsvReadsPairs) {
  const auto set = ReadPairsTsv(
      Write("p.tsv", "1\tA cat sat .\tThe cat sat .\t1\n2\tCafé ☕\tTea\t0\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->pairs, SizeIs(2));
  EXPECT_EQ(set->pairs[0].a, "A cat sat .");
  EXPECT_EQ(set->pairs[0].b, "The cat sat .");
  EXPECT_TRUE(set->pairs[0].positive);
  EXPECT_EQ(set->pairs[1].a, "Café ☕");
  EXPECT_FALSE(set->pairs[1].positive);
  EXPECT_EQ(set->report.records, 2);
  EXPECT_EQ(set->report.malformed, 0);
  EXPECT_THAT(set->report.malformed_examples, SizeIs(0));
}

TEST_F(EvalDataTest, TsvSkipsAHeader) {
  const auto set = ReadPairsTsv(
      Write("p.tsv", "id\tsentence1\tsentence2\tlabel\n" + GoodTsv(3)));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 3);
  EXPECT_EQ(set->report.malformed, 0);
  EXPECT_EQ(set->pairs[0].a, "sentence a0");
}

TEST_F(EvalDataTest, TsvHeaderOnlyHasNoRecords) {
  const std::string path = Write("p.tsv", "id\ta\tb\tlabel\r\n");
  const auto set = ReadPairsTsv(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(path + " has no records"));
}

TEST_F(EvalDataTest, TsvOnlyTheFirstLineCanBeAHeader) {
  const auto set =
      ReadPairsTsv(Write("p.tsv", GoodTsv(2) + "id\ta\tb\tlabel\n"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr("line 3: label \"label\""));
}

TEST_F(EvalDataTest, TsvCrlfAndBlankLines) {
  const auto set = ReadPairsTsv(
      Write("p.tsv", "\r\n1\ta\tb\t1\r\n\r\n   \r\n2\tc\td\t0\r\n\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->pairs, SizeIs(2));
  EXPECT_EQ(set->pairs[0].b, "b");
  EXPECT_TRUE(set->pairs[0].positive);
  EXPECT_EQ(set->pairs[1].b, "d");
  EXPECT_FALSE(set->pairs[1].positive);
  EXPECT_EQ(set->report.malformed, 0);
}

TEST_F(EvalDataTest, TsvBadLabelIsAnErrorNamingLineAndValue) {
  const std::string path = Write("p.tsv", GoodTsv(3) + "4\ta\tb\tyes\n");
  const auto set = ReadPairsTsv(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(path + " line 4"));
  EXPECT_THAT(set.status().message(), HasSubstr("\"yes\" is not 0 or 1"));
  EXPECT_FALSE(ReadPairsTsv(Write("q.tsv", "1\ta\tb\t2\n")).ok());
  EXPECT_FALSE(ReadPairsTsv(Write("r.tsv", "1\ta\tb\t\n")).ok());
}

TEST_F(EvalDataTest, TsvWrongFieldCountIsCountedAsMalformed) {
  const auto set = ReadPairsTsv(Write(
      "p.tsv", GoodTsv(4) + "5\tonly two\n6\ta\tb\t1\textra\n7\t\tb\t1\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 4);
  EXPECT_EQ(set->report.malformed, 3);
  EXPECT_THAT(set->report.malformed_examples,
              ElementsAre("line 5: expected 4 tab-separated fields, got 2",
                          "line 6: expected 4 tab-separated fields, got 5",
                          "line 7: empty text in field 2"));
  EXPECT_THAT(set->pairs, SizeIs(4));
}

TEST_F(EvalDataTest, MalformedExamplesKeepTheFirstFive) {
  std::string bad;
  for (int i = 0; i < 8; ++i) bad += "x\n";
  const auto set = ReadPairsTsv(Write("p.tsv", GoodTsv(10) + bad));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.malformed, 8);
  ASSERT_THAT(set->report.malformed_examples, SizeIs(5));
  EXPECT_EQ(set->report.malformed_examples[0],
            "line 11: expected 4 tab-separated fields, got 1");
  EXPECT_EQ(set->report.malformed_examples[4],
            "line 15: expected 4 tab-separated fields, got 1");
}

TEST_F(EvalDataTest, TsvExactlyHalfMalformedIsAccepted) {
  const auto set = ReadPairsTsv(Write("p.tsv", GoodTsv(3) + "a\nb\nc\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 3);
  EXPECT_EQ(set->report.malformed, 3);
}

TEST_F(EvalDataTest, TsvMoreThanHalfMalformedIsAnError) {
  const std::string path = Write("p.tsv", GoodTsv(3) + "a\nb\nc\nd\n");
  const auto set = ReadPairsTsv(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(path));
  EXPECT_THAT(set.status().message(),
              HasSubstr("4 of 7 lines are malformed (more than half"));
  EXPECT_THAT(set.status().message(),
              HasSubstr("line 4: expected 4 tab-separated fields, got 1"));
}

TEST_F(EvalDataTest, TsvNoGoodLineIsAnError) {
  // A comma-separated file given as TSV.
  const auto set = ReadPairsTsv(Write("p.tsv", "1,a,b,1\n2,c,d,0\n"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr("2 of 2 lines are malformed (none is usable"));
}

TEST_F(EvalDataTest, TsvEmptyMissingAndDirectory) {
  for (const std::string& content : {std::string(), std::string("\n\r\n  \n"),
                                     std::string("\xEF\xBB\xBF")}) {
    const std::string path = Write("empty.tsv", content);
    const auto set = ReadPairsTsv(path);
    EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(set.status().message(), HasSubstr(path + " has no records"));
  }
  const auto missing = ReadPairsTsv(Path("missing.tsv"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(Path("missing.tsv")));
  const auto directory = ReadPairsTsv(dir_);
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(directory.status().message(), HasSubstr("is a directory"));
}

// ---------------------------------------------------------------- JSONL pairs

TEST_F(EvalDataTest, JsonlReadsIntegerAndBooleanLabels) {
  const auto set = ReadPairsJsonl(
      Write("p.jsonl",
            "{\"a\": \"x\", \"b\": \"y\", \"label\": 1}\r\n"
            "\n"
            "{\"b\": \"\\u00e9t\\u00e9\", \"a\": \"ü\", \"label\": false, "
            "\"id\": 7}\n"
            "{\"a\": \"p\", \"b\": \"q\", \"label\": true}\n"
            "{\"a\": \"r\", \"b\": \"s\", \"label\": 0}"));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->pairs, SizeIs(4));
  EXPECT_TRUE(set->pairs[0].positive);
  EXPECT_EQ(set->pairs[1].a, "ü");
  EXPECT_EQ(set->pairs[1].b, "été");
  EXPECT_FALSE(set->pairs[1].positive);
  EXPECT_TRUE(set->pairs[2].positive);
  EXPECT_FALSE(set->pairs[3].positive);
  EXPECT_EQ(set->report.records, 4);
  EXPECT_EQ(set->report.malformed, 0);
}

TEST_F(EvalDataTest, JsonlCustomLabelKey) {
  const std::string path =
      Write("p.jsonl",
            "{\"a\": \"x\", \"b\": \"y\", \"is_duplicate\": 1}\n"
            "{\"a\": \"z\", \"b\": \"w\", \"is_duplicate\": 0}\n");
  const auto set = ReadPairsJsonl(path, "is_duplicate");
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->pairs, SizeIs(2));
  EXPECT_TRUE(set->pairs[0].positive);
  EXPECT_FALSE(set->pairs[1].positive);
}

TEST_F(EvalDataTest, JsonlMissingLabelKeyNamesTheKeyAndTheLinesKeys) {
  const std::string path =
      Write("p.jsonl", "{\"a\": \"x\", \"b\": \"y\", \"is_duplicate\": 1}\n");
  const auto set = ReadPairsJsonl(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  const absl::string_view message = set.status().message();
  EXPECT_THAT(message, HasSubstr(path + " line 1"));
  EXPECT_THAT(message, HasSubstr("no label key \"label\""));
  EXPECT_THAT(message, HasSubstr("\"a\", \"b\", \"is_duplicate\""));
  EXPECT_THAT(message, HasSubstr("label key"));
}

TEST_F(EvalDataTest, JsonlBadLabelIsAnErrorNamingLineAndValue) {
  const std::string good = "{\"a\": \"x\", \"b\": \"y\", \"label\": 1}\n";
  for (const char* value : {"2", "-1", "\"1\"", "1.0", "null", "[1]"}) {
    const std::string path = Write(
        "p.jsonl",
        good + "{\"a\": \"x\", \"b\": \"y\", \"label\": " + value + "}\n");
    const auto set = ReadPairsJsonl(path);
    EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument) << value;
    EXPECT_THAT(set.status().message(), HasSubstr(path + " line 2"));
    EXPECT_THAT(set.status().message(),
                HasSubstr("expected 0, 1, true or false"));
  }
  const auto set = ReadPairsJsonl(
      Write("q.jsonl", "{\"a\": \"x\", \"b\": \"y\", \"label\": 7}\n"));
  EXPECT_THAT(set.status().message(),
              HasSubstr("label \"label\" is 7, expected"));
}

TEST_F(EvalDataTest, JsonlMalformedLinesAreCounted) {
  std::string good;
  for (int i = 0; i < 6; ++i) {
    good += "{\"a\": \"x\", \"b\": \"y\", \"label\": 1}\n";
  }
  const auto set = ReadPairsJsonl(
      Write("p.jsonl", good + "{\"a\": \"x\", \"b\": \n"        // line 7
                              "[1, 2]\n"                        // line 8
                              "{\"b\": \"y\", \"label\": 1}\n"  // line 9
                              "{\"a\": \"x\", \"b\": 3, \"label\": 1}\n"  // 10
                              "{\"a\": \" \", \"b\": \"y\", \"label\": 0}\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 6);
  EXPECT_EQ(set->report.malformed, 5);
  ASSERT_THAT(set->report.malformed_examples, SizeIs(5));
  EXPECT_THAT(set->report.malformed_examples[0],
              HasSubstr("line 7: invalid JSON at column 17: syntax error"));
  EXPECT_EQ(set->report.malformed_examples[1],
            "line 8: expected a JSON object, got an array");
  EXPECT_EQ(set->report.malformed_examples[2],
            "line 9: no \"a\" (the object has keys \"b\", \"label\")");
  EXPECT_EQ(set->report.malformed_examples[3],
            "line 10: \"b\" is a number, not a string");
  EXPECT_EQ(set->report.malformed_examples[4], "line 11: \"a\" is empty");
}

TEST_F(EvalDataTest, JsonlMoreThanHalfMalformedIsAnError) {
  const std::string path = Write(
      "p.jsonl", "{\"a\": \"x\", \"b\": \"y\", \"label\": 1}\nnot json\n{}\n");
  const auto set = ReadPairsJsonl(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr("2 of 3 lines are malformed (more than half"));
  EXPECT_THAT(set.status().message(),
              HasSubstr("line 2: invalid JSON at column 2: "));
  EXPECT_THAT(set.status().message(),
              HasSubstr("line 3: no \"a\" (the object has no keys)"));
}

TEST_F(EvalDataTest, JsonlEmptyMissingAndDirectory) {
  const std::string path = Write("p.jsonl", "\n\n");
  EXPECT_THAT(ReadPairsJsonl(path).status().message(),
              HasSubstr(path + " has no records"));
  EXPECT_EQ(ReadPairsJsonl(Path("missing.jsonl")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadPairsJsonl(dir_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- GPTCache

std::string MockItem(const std::string& n) {
  return "{\"origin\": \"o" + n + "\", \"similar\": \"s" + n + "\"}";
}

TEST_F(EvalDataTest, GptCacheMockMakesPositivesAndWrappingNegatives) {
  const auto set = ReadGptCacheMock(
      Write("m.json", "[\r\n" + MockItem("1") + ",\r\n" + MockItem("2") +
                          ",\r\n" + MockItem("3") + "\r\n]\r\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->pairs, SizeIs(6));
  const std::vector<std::vector<std::string>> expected = {
      {"o1", "s1", "1"}, {"o1", "s2", "0"}, {"o2", "s2", "1"},
      {"o2", "s3", "0"}, {"o3", "s3", "1"}, {"o3", "s1", "0"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(set->pairs[i].a, expected[i][0]) << i;
    EXPECT_EQ(set->pairs[i].b, expected[i][1]) << i;
    EXPECT_EQ(set->pairs[i].positive, expected[i][2] == "1") << i;
  }
  EXPECT_EQ(set->report.records, 3);
  EXPECT_EQ(set->report.malformed, 0);
}

TEST_F(EvalDataTest, GptCacheMockMalformedItemsAreSkipped) {
  const auto set = ReadGptCacheMock(
      Write("m.json", "[" + MockItem("1") + ", {\"origin\": \"o\"}, 5, " +
                          MockItem("2") + ", " + MockItem("3") +
                          ", {\"origin\": \"o\", \"similar\": null}]"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 3);
  EXPECT_EQ(set->report.malformed, 3);
  EXPECT_THAT(
      set->report.malformed_examples,
      ElementsAre("[1]: no \"similar\" (the object has keys \"origin\")",
                  "[2]: expected an object, got a number",
                  "[5]: \"similar\" is null, not a string"));
  // Negatives pair with the next good item.
  ASSERT_THAT(set->pairs, SizeIs(6));
  EXPECT_EQ(set->pairs[1].b, "s2");
  EXPECT_EQ(set->pairs[5].b, "s1");
}

TEST_F(EvalDataTest, GptCacheMockShapeErrors) {
  std::string path = Write("m.json", "{\"origin\": \"a\", \"similar\": \"b\"}");
  auto set = ReadGptCacheMock(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr(path + ": expected a JSON array"));
  EXPECT_THAT(set.status().message(), HasSubstr("an object with keys"));

  path = Write("m.json", "[" + MockItem("1") + ",");
  set = ReadGptCacheMock(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(path + ": invalid JSON: "));

  path = Write("m.json", "[" + MockItem("1") + "]");
  set = ReadGptCacheMock(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr("needs at least 2 items"));

  path = Write("m.json", "[]");
  EXPECT_THAT(ReadGptCacheMock(path).status().message(),
              HasSubstr(path + " has no records"));
  path = Write("m.json", "  \n");
  EXPECT_THAT(ReadGptCacheMock(path).status().message(),
              HasSubstr(path + " is empty"));

  path = Write("m.json", "[" + MockItem("1") + ", 1, 2]");
  EXPECT_THAT(ReadGptCacheMock(path).status().message(),
              HasSubstr("2 of 3 items are malformed (more than half"));
  EXPECT_EQ(ReadGptCacheMock(Path("missing.json")).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------- Banking77

TEST_F(EvalDataTest, Banking77ReadsTrainAndTest) {
  Write("b/train.csv",
        "text,category\r\n"
        "I am still waiting on my card?,card_arrival\r\n"
        "\"\nI can't seem to use my card\n\n\n\",card_not_working\r\n"
        "\"What's a \"\"virtual\"\" card, exactly?\",get_virtual_card\r\n");
  Write("b/test.csv",
        "text,category\n\"Where is my PIN?\",pin_blocked\nHow do I top up "
        "in €?,top_up\n");
  const auto set = ReadBanking77(Path("b"));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->stored, SizeIs(3));
  EXPECT_EQ(set->stored[0].text, "I am still waiting on my card?");
  EXPECT_EQ(set->stored[0].intent, "card_arrival");
  EXPECT_EQ(set->stored[1].text, "\nI can't seem to use my card\n\n\n");
  EXPECT_EQ(set->stored[1].intent, "card_not_working");
  EXPECT_EQ(set->stored[2].text, "What's a \"virtual\" card, exactly?");
  ASSERT_THAT(set->queries, SizeIs(2));
  EXPECT_EQ(set->queries[1].text, "How do I top up in €?");
  EXPECT_EQ(set->queries[1].intent, "top_up");
  EXPECT_EQ(set->report.records, 5);
  EXPECT_EQ(set->report.malformed, 0);
}

TEST_F(EvalDataTest, Banking77RowsWithoutTwoFieldsAreMalformed) {
  Write("b/train.csv",
        "text,category\na,x\nb,y\nc,z\nno category\n\"x, y\",z,extra\n");
  Write("b/test.csv", "text,category\nq,x\n,x\n");
  const auto set = ReadBanking77(Path("b"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 4);
  EXPECT_EQ(set->report.malformed, 3);
  EXPECT_THAT(set->report.malformed_examples,
              ElementsAre("train.csv line 5: expected 2 comma-separated "
                          "fields (text, category), got 1",
                          "train.csv line 6: expected 2 comma-separated "
                          "fields (text, category), got 3",
                          "test.csv line 3: empty text"));
}

TEST_F(EvalDataTest, Banking77MoreThanHalfMalformedIsAnError) {
  Write("b/train.csv", "text,category\na,x\nb,y\n");
  const std::string test = Write("b/test.csv", "text,category\nq,x\nr\ns\n");
  const auto set = ReadBanking77(Path("b"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr(test + ": 2 of 3 rows are malformed (more than half"));
}

TEST_F(EvalDataTest, Banking77HeaderIsRequired) {
  Write("b/train.csv", "text,category\na,x\n");
  const std::string test = Write("b/test.csv", "q,x\nr,y\n");
  const auto set = ReadBanking77(Path("b"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(test + " line 1"));
  EXPECT_THAT(set.status().message(),
              HasSubstr("expected the header \"text,category\", got \"q,x\""));
}

TEST_F(EvalDataTest, Banking77HeaderOnlyOrEmptyHasNoRecords) {
  Write("b/train.csv", "text,category\na,x\n");
  std::string test = Write("b/test.csv", "text,category\r\n");
  EXPECT_THAT(ReadBanking77(Path("b")).status().message(),
              HasSubstr(test + " has no records"));
  test = Write("b/test.csv", "");
  EXPECT_THAT(ReadBanking77(Path("b")).status().message(),
              HasSubstr(test + " has no records"));
}

TEST_F(EvalDataTest, Banking77UnterminatedQuoteNamesFileAndLine) {
  const std::string train =
      Write("b/train.csv", "text,category\na,x\n\"b,y\nc,z\n");
  Write("b/test.csv", "text,category\nq,x\n");
  const auto set = ReadBanking77(Path("b"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      set.status().message(),
      HasSubstr(train + ": unterminated quoted field starting on line 3"));
}

TEST_F(EvalDataTest, Banking77MissingDirectoryOrFiles) {
  auto set = ReadBanking77(Path("nope"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(set.status().message(), HasSubstr(Path("nope")));

  const std::string file = Write("file.csv", "text,category\na,b\n");
  set = ReadBanking77(file);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(file + " is not a directory"));

  Write("b/train.csv", "text,category\na,x\n");
  set = ReadBanking77(Path("b"));
  EXPECT_EQ(set.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(set.status().message(), HasSubstr(Path("b/test.csv")));

  std::filesystem::create_directories(Path("b/test.csv"));
  set = ReadBanking77(Path("b") + "/");
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr(Path("b/test.csv") + " is a directory"));
}

// ---------------------------------------------------------------- CLINC150

TEST_F(EvalDataTest, Clinc150ReadsTrainTestAndOutOfScope) {
  const auto set = ReadClinc150(
      Write("c.json",
            "{\r\n \"oos_val\": [[\"v\", \"oos\"]],\r\n"
            " \"train\": [[\"what is my balance\", \"balance\"], [\"transfer "
            "money\", \"transfer\"]],\r\n"
            " \"val\": [[\"x\", \"balance\"]],\r\n"
            " \"test\": [[\"how much do i have\", \"balance\"]],\r\n"
            " \"oos_test\": [[\"who won the nfl game\", \"oos\"], [\"a show on "
            "broadway\", \"oos\"]]\r\n}\r\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_THAT(set->stored, SizeIs(2));
  EXPECT_EQ(set->stored[1].text, "transfer money");
  EXPECT_EQ(set->stored[1].intent, "transfer");
  ASSERT_THAT(set->queries, SizeIs(3));
  EXPECT_EQ(set->queries[0].intent, "balance");
  EXPECT_EQ(set->queries[1].text, "who won the nfl game");
  EXPECT_EQ(set->queries[1].intent, kOutOfScopeIntent);
  EXPECT_EQ(set->queries[2].intent, "oos");
  EXPECT_EQ(set->report.records, 5);
  EXPECT_EQ(set->report.malformed, 0);
}

TEST_F(EvalDataTest, Clinc150OutOfScopeListIsOptional) {
  const auto set =
      ReadClinc150(Write("c.json",
                         "{\"train\": [[\"a\", \"x\"]], \"test\": [[\"b\", "
                         "\"x\"]], \"oos_test\": []}"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(set->queries, SizeIs(1));
  EXPECT_TRUE(ReadClinc150(Write("d.json",
                                 "{\"train\": [[\"a\", \"x\"]], "
                                 "\"test\": [[\"b\", \"x\"]]}"))
                  .ok());
}

TEST_F(EvalDataTest, Clinc150BadRowsAreMalformed) {
  const auto set = ReadClinc150(
      Write("c.json",
            "{\"train\": [[\"a\", \"x\"], [\"b\", \"y\"], [\"c\"], "
            "[\"d\", 4], \"e\", [\"f\", \"z\"]], \"test\": [[\"q\", \"x\"], "
            "[\"\", \"x\"]],"
            " \"oos_test\": [[\"o\", \"oos\"]]}"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 5);
  EXPECT_EQ(set->report.malformed, 4);
  EXPECT_THAT(set->stored, SizeIs(3));
  EXPECT_THAT(set->queries, SizeIs(2));
  EXPECT_THAT(
      set->report.malformed_examples,
      ElementsAre("\"train\"[2]: expected a [text, intent] pair, got "
                  "[\"c\"]",
                  "\"train\"[3]: text and intent must be strings, got "
                  "[\"d\",4]",
                  "\"train\"[4]: expected a [text, intent] pair, got \"e\"",
                  "\"test\"[1]: empty text"));
}

TEST_F(EvalDataTest, Clinc150ShapeErrors) {
  std::string path = Write("c.json", "[[\"a\", \"x\"]]");
  auto set = ReadClinc150(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              HasSubstr(path + ": expected a JSON object with \"train\" and "
                               "\"test\" lists"));
  EXPECT_THAT(set.status().message(), HasSubstr("got an array"));

  path = Write("c.json", "{\"val\": [], \"test\": []}");
  set = ReadClinc150(path);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(path + ": no \"train\" list"));
  EXPECT_THAT(set.status().message(), HasSubstr("keys \"test\", \"val\""));

  path = Write("c.json", "{}");
  EXPECT_THAT(ReadClinc150(path).status().message(),
              HasSubstr("no \"train\" or \"test\" list"));

  path = Write("c.json", "{\"train\": {\"a\": \"x\"}, \"test\": []}");
  EXPECT_THAT(ReadClinc150(path).status().message(),
              HasSubstr(path + ": \"train\" is an object, expected a list"));

  path = Write("c.json", "{\"train\": [[\"a\", \"x\"]], \"test\": []}");
  EXPECT_THAT(ReadClinc150(path).status().message(),
              HasSubstr(path + ": \"test\" has no records"));

  path = Write("c.json",
               "{\"train\": [[\"a\", \"x\"]], \"test\": [[\"b\", \"x\"]], "
               "\"oos_test\": [1, 2]}");
  EXPECT_THAT(ReadClinc150(path).status().message(),
              HasSubstr(path + ": \"oos_test\": 2 of 2 rows are malformed"));

  path = Write("c.json", "{\"train\": [");
  EXPECT_THAT(ReadClinc150(path).status().message(),
              HasSubstr(path + ": invalid JSON: "));
  path = Write("c.json", "");
  EXPECT_THAT(ReadClinc150(path).status().message(),
              HasSubstr(path + " is empty"));
  EXPECT_EQ(ReadClinc150(Path("missing.json")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadClinc150(dir_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- robustness

// Random text made of the characters that matter to the parsers: the readers
// return a value or an error, never crash or throw.
TEST_F(EvalDataTest, RandomInputIsHandled) {
  constexpr absl::string_view kAlphabet = ",\"\n\r\t{}[]:01ab \xC3\xA9\xFF";
  std::mt19937 random(42);
  for (int round = 0; round < 300; ++round) {
    std::string text(random() % 80, ' ');
    for (char& c : text) c = kAlphabet[random() % kAlphabet.size()];
    (void)ParseCsv(text);
    const std::string path = Write("r.txt", text);
    (void)ReadPairsTsv(path);
    (void)ReadPairsJsonl(path);
    (void)ReadGptCacheMock(path);
    (void)ReadClinc150(path);
    Write("b/train.csv", "text,category\n" + text);
    Write("b/test.csv", text);
    (void)ReadBanking77(Path("b"));
  }
}

// ---------------------------------------------------------------- summary

TEST(ReportSummaryTest, CountsAndExamples) {
  ReadReport report;
  report.records = 10;
  EXPECT_EQ(ReportSummary(report), "10 records");
  report.malformed = 2;
  report.malformed_examples = {"line 3: a", "line 4: b"};
  EXPECT_EQ(ReportSummary(report),
            "10 records, 2 malformed skipped (line 3: a; line 4: b)");
  report.malformed = 9;
  EXPECT_EQ(ReportSummary(report),
            "10 records, 9 malformed skipped (line 3: a; line 4: b; ...)");
}

// ---------------------------------------------------------------- real data

// The data sets of ../shared/data, when present.
class RealDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef PROMPTCACHE_SHARED_DATA
    root_ = PROMPTCACHE_SHARED_DATA;
#endif
    if (root_.empty() || !std::filesystem::is_directory(root_)) {
      GTEST_SKIP() << "no shared data directory (PROMPTCACHE_SHARED_DATA)";
    }
  }
  // A file of the data sets; a failure when it is absent.
  std::string Data(const std::string& relative) {
    const std::string path = root_ + "/" + relative;
    if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing " << path;
    return path;
  }

  std::string root_;
};

TEST_F(RealDataTest, PawsDev) {
  const auto set = ReadPairsTsv(Data("pairs/paws_wiki_dev/dev.tsv"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->pairs.size(), 8000u);
  EXPECT_EQ(set->report.records, 8000);
  EXPECT_EQ(set->report.malformed, 0);
  int64_t positives = 0;
  for (const LabeledPair& p : set->pairs) positives += p.positive;
  EXPECT_EQ(positives, 3539);
  // CRLF lines: no text keeps a CR.
  for (const LabeledPair& p : set->pairs) {
    ASSERT_EQ(p.b.find('\r'), std::string::npos);
  }
}

TEST_F(RealDataTest, GptCacheMock) {
  const auto set = ReadGptCacheMock(Data("pairs/gptcache_mock/mock_data.json"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->report.records, 999);
  EXPECT_EQ(set->pairs.size(), 1998u);
  EXPECT_EQ(set->report.malformed, 0);
}

TEST_F(RealDataTest, Banking77) {
  const auto set = ReadBanking77(Data("intents/banking77"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->stored.size(), 10003u);
  EXPECT_EQ(set->queries.size(), 3080u);
  EXPECT_EQ(set->report.records, 10003 + 3080);
  EXPECT_EQ(set->report.malformed, 0);
  EXPECT_EQ(set->stored.front().text, "I am still waiting on my card?");
  EXPECT_EQ(set->stored.front().intent, "card_arrival");
  // Quoted newlines and "" escapes stay inside the text: train.csv has 10
  // texts with a newline and 21 with a quote.
  int with_newline = 0, with_quote = 0;
  for (const IntentQuery& q : set->stored) {
    with_newline += q.text.find('\n') != std::string::npos;
    with_quote += q.text.find('"') != std::string::npos;
  }
  EXPECT_EQ(with_newline, 10);
  EXPECT_EQ(with_quote, 21);
}

TEST_F(RealDataTest, Clinc150) {
  const auto set = ReadClinc150(Data("intents/clinc150/data_full.json"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->stored.size(), 15000u);
  EXPECT_EQ(set->queries.size(), 4500u + 1000u);
  EXPECT_EQ(set->report.malformed, 0);
  int64_t oos = 0;
  for (const IntentQuery& q : set->queries) oos += q.intent == "oos";
  EXPECT_EQ(oos, 1000);
  for (const IntentQuery& q : set->stored) ASSERT_NE(q.intent, "oos");
}

}  // namespace
}  // namespace promptcache::eval

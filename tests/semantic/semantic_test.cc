// The semantic tier: embedder, guard, index, and near-duplicate serving.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/cached_client.h"
#include "semantic/vector_index.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

double Cosine(const std::string& a, const std::string& b) {
  BuiltinEmbedder embedder;
  std::vector<float> va, vb;
  EXPECT_TRUE(embedder.Embed({a}, &va).ok());
  EXPECT_TRUE(embedder.Embed({b}, &vb).ok());
  double dot = 0;
  for (size_t i = 0; i < va.size(); ++i) dot += double{va[i]} * vb[i];
  return dot;
}

TEST(BuiltinEmbedderTest, NormalizedDeterministicAndMeaningful) {
  BuiltinEmbedder embedder;
  EXPECT_EQ(embedder.dimension(), 128);
  EXPECT_EQ(embedder.name(), "builtin-hash-v1/128");
  std::vector<float> v;
  ASSERT_TRUE(
      embedder.Embed({"How do I reset my password?", "hello"}, &v).ok());
  ASSERT_EQ(v.size(), 256u);
  double norm = 0;
  for (int i = 0; i < 128; ++i) norm += double{v[i]} * v[i];
  EXPECT_NEAR(norm, 1.0, 1e-5);
  std::vector<float> again;
  ASSERT_TRUE(embedder.Embed({"How do I reset my password?"}, &again).ok());
  EXPECT_TRUE(std::equal(again.begin(), again.end(), v.begin()));
  EXPECT_GT(
      Cosine("How do I reset my password?", "how to reset my password"),
      Cosine("How do I reset my password?", "What is the weather in Paris?"));
  EXPECT_NEAR(Cosine("Reset my password", "reset my password!!"), 1.0, 1e-5);
  ASSERT_TRUE(embedder.Embed({"?!..."}, &v).ok());
  EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float x) { return x == 0; }));
  BuiltinEmbedder bad(BuiltinEmbedderOptions{100});
  EXPECT_EQ(bad.Embed({"x"}, &v).code(), absl::StatusCode::kInvalidArgument);
}

std::vector<float> RandomUnit(std::mt19937& rng, int dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  double norm = 0;
  for (float& x : v) {
    x = normal(rng);
    norm += double{x} * x;
  }
  for (float& x : v) x /= static_cast<float>(std::sqrt(norm));
  return v;
}

// Each kind of index: IVF with small lists (so that it splits), flat, and
// HNSW above 50 vectors.
struct IndexParam {
  internal::VectorIndexKind kind;
  int hnsw_min_vectors;
};
class VectorIndexTest : public ::testing::TestWithParam<IndexParam> {};

TEST_P(VectorIndexTest, FindsNearestRemovesAndPersists) {
  internal::VectorIndexOptions o;
  o.dimension = 32;
  o.kind = GetParam().kind;
  o.hnsw_min_vectors = GetParam().hnsw_min_vectors;
  o.ivf_max_list_size = 16;
  o.ivf_probes = 4;
  internal::VectorIndex index(o);
  std::mt19937 rng(7);
  const Key128 scope{1, 2}, other{3, 4};
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 300; ++i) {
    vectors.push_back(RandomUnit(rng, 32));
    index.Add(scope, Key128{0, static_cast<uint64_t>(i)}, Key128{9, 9},
              static_cast<uint64_t>(i), vectors.back().data());
  }
  index.Add(other, Key128{1, 0}, Key128{9, 9}, 0, vectors[5].data());
  EXPECT_EQ(index.IsHnsw(scope), o.kind == internal::VectorIndexKind::kHnsw);
  if (o.kind == internal::VectorIndexKind::kIvf) {
    EXPECT_GE(index.IvfLists(scope), 300 / 16);
  }
  std::vector<internal::VectorCandidate> found =
      index.Search(scope, vectors[42].data(), 3);
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found[0].entry, (Key128{0, 42}));
  EXPECT_NEAR(found[0].similarity, 1.0, 1e-4);
  // Scopes never mix.
  for (const auto& c : index.Search(other, vectors[42].data(), 5)) {
    EXPECT_EQ(c.entry, (Key128{1, 0}));
  }
  index.Remove(Key128{0, 42});
  found = index.Search(scope, vectors[42].data(), 3);
  ASSERT_FALSE(found.empty());
  EXPECT_NE(found[0].entry, (Key128{0, 42}));

  TempDir dir;
  ASSERT_TRUE(index.SaveScope(scope, dir.path(), 17).ok());
  internal::VectorIndex loaded(o);
  EXPECT_FALSE(loaded.LoadScope(scope, dir.path(), 18).ok()) << "stale";
  ASSERT_TRUE(loaded.LoadScope(scope, dir.path(), 17).ok());
  EXPECT_EQ(loaded.Search(scope, vectors[7].data(), 1).at(0).entry,
            (Key128{0, 7}));
  EXPECT_EQ(loaded.Search(scope, vectors[7].data(), 1).at(0).numbers, 7u);
  EXPECT_TRUE(loaded.Search(scope, vectors[42].data(), 1).at(0).entry !=
              (Key128{0, 42}));
  // Files of another kind are not loaded (the cache rebuilds the scope).
  internal::VectorIndexOptions other_kind = o;
  other_kind.kind = o.kind == internal::VectorIndexKind::kIvf
                        ? internal::VectorIndexKind::kFlat
                        : internal::VectorIndexKind::kIvf;
  internal::VectorIndex wrong_kind(other_kind);
  EXPECT_FALSE(wrong_kind.LoadScope(scope, dir.path(), 17).ok());
  // A slot file claiming 2^31 slots is refused before anything is
  // allocated for them.
  {
    const std::string slots = dir.path() + "/" + scope.ToHex() + ".slots";
    std::fstream f(slots, std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t huge = uint64_t{1} << 31;
    f.seekp(8 + 3 * sizeof(uint64_t));
    f.write(reinterpret_cast<const char*>(&huge), sizeof(huge));
  }
  internal::VectorIndex huge_count(o);
  EXPECT_FALSE(huge_count.LoadScope(scope, dir.path(), 17).ok());
  ASSERT_TRUE(index.SaveScope(scope, dir.path(), 17).ok());
  // A slot file of another version (its number signatures may be read
  // otherwise) is not loaded; the cache rebuilds the scope.
  {
    const std::string slots = dir.path() + "/" + scope.ToHex() + ".slots";
    std::fstream f(slots, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(7);
    f.put('2');
  }
  internal::VectorIndex old_version(o);
  const absl::Status old_status = old_version.LoadScope(scope, dir.path(), 17);
  EXPECT_EQ(old_status.code(), absl::StatusCode::kFailedPrecondition)
      << old_status;
  EXPECT_NE(old_status.message().find("another version"),
            absl::string_view::npos);
  ASSERT_TRUE(index.SaveScope(scope, dir.path(), 17).ok());
  // A corrupt file is an error, not a crash.
  for (const char* ext : {".faiss", ".ivf"}) {
    std::ofstream(dir.path() + "/" + scope.ToHex() + ext, std::ios::trunc)
        << "garbage";
  }
  internal::VectorIndex corrupt(o);
  EXPECT_FALSE(corrupt.LoadScope(scope, dir.path(), 17).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, VectorIndexTest,
    ::testing::Values(IndexParam{internal::VectorIndexKind::kIvf, 0},
                      IndexParam{internal::VectorIndexKind::kFlat, 50},
                      IndexParam{internal::VectorIndexKind::kHnsw, 50}));

// The IVF index against an exact search over the same vectors: clusters
// of near-identical vectors (templates that differ in one detail) plus
// noise, many splits, removals and compaction, a save and a load.
TEST(IvfIndexTest, FindsWhatAnExactSearchFinds) {
  constexpr int kDim = 24;
  internal::VectorIndexOptions o;
  o.dimension = kDim;
  o.ivf_max_list_size = 32;
  o.ivf_probes = 8;
  internal::VectorIndex ivf(o);
  o.kind = internal::VectorIndexKind::kFlat;
  internal::VectorIndex flat(o);
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0, 0.05f);
  std::vector<std::vector<float>> centers, vectors;
  for (int c = 0; c < 61; ++c) centers.push_back(RandomUnit(rng, kDim));
  const Key128 scope{4, 4};
  for (int i = 0; i < 6000; ++i) {
    std::vector<float> v = centers[i % centers.size()];
    double norm = 0;
    for (float& x : v) {
      x += noise(rng);
      norm += double{x} * x;
    }
    for (float& x : v) x /= static_cast<float>(std::sqrt(norm));
    vectors.push_back(v);
    for (internal::VectorIndex* index : {&ivf, &flat}) {
      index->Add(scope, Key128{0, static_cast<uint64_t>(i)}, Key128{}, 0,
                 v.data());
    }
  }
  // A third removed (a third of each cluster).
  for (int i = 0; i < 6000; i += 3) {
    ivf.Remove(Key128{0, static_cast<uint64_t>(i)});
    flat.Remove(Key128{0, static_cast<uint64_t>(i)});
  }
  EXPECT_EQ(ivf.live_vectors(), 4000);
  EXPECT_GT(ivf.IvfLists(scope), 4000 / 32);
  TempDir dir;
  ASSERT_TRUE(ivf.SaveScope(scope, dir.path(), 1).ok());
  internal::VectorIndex loaded([&] {
    internal::VectorIndexOptions l = o;
    l.kind = internal::VectorIndexKind::kIvf;
    return l;
  }());
  ASSERT_TRUE(loaded.LoadScope(scope, dir.path(), 1).ok());
  for (internal::VectorIndex* index : {&ivf, &loaded}) {
    int same_best = 0;
    for (int q = 0; q < 500; ++q) {
      // Near a live vector (a removed one's neighbours can all be removed
      // too, and the flat search only looks a little past removed ones).
      const int near = (q * 37) % 6000;
      std::vector<float> query = vectors[near % 3 == 0 ? near + 1 : near];
      for (float& x : query) x += noise(rng);
      const auto want = flat.Search(scope, query.data(), 1);
      const auto got = index->Search(scope, query.data(), 5);
      ASSERT_FALSE(got.empty());
      ASSERT_FALSE(want.empty());
      EXPECT_EQ(got[0].entry.lo % 3 == 0, false) << "a removed vector";
      for (size_t r = 1; r < got.size(); ++r) {
        EXPECT_LE(got[r].similarity, got[r - 1].similarity);
      }
      same_best += got[0].entry == want[0].entry;
    }
    // Near-duplicates share a list: the probed lists hold the best match.
    EXPECT_GE(same_best, 490);
  }
}

// A synchronous Add of an entry racing the queue's thread adding an older
// vector of it (a background rebuild or an import beside stores) must not
// lose the entry (review of issue 13: 2 of 200k were lost).
TEST(VectorIndexQueueTest, AddsRacingTheQueueLoseNoEntry) {
  internal::VectorIndexOptions o;
  o.dimension = 8;
  internal::VectorIndex index(o);
  std::mt19937 rng(9);
  constexpr int kEntries = 30000;
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < kEntries; ++i) vectors.push_back(RandomUnit(rng, 8));
  std::atomic<int> queued{0};
  std::thread storer([&] {
    for (int i = 0; i < kEntries; ++i) {
      index.AddLater(Key128{1, 1}, Key128{0, static_cast<uint64_t>(i)},
                     Key128{}, 0, vectors[i].data());
      queued.store(i + 1, std::memory_order_release);
    }
  });
  for (int i = 0; i < kEntries; i += 3) {
    while (queued.load(std::memory_order_acquire) <= i) {
      std::this_thread::yield();
    }
    index.Add(Key128{1, 1}, Key128{0, static_cast<uint64_t>(i)}, Key128{}, 0,
              vectors[i].data());
  }
  storer.join();
  index.WaitForQueue();
  EXPECT_EQ(index.live_vectors(), kEntries);
}

// Vectors added through the queue are found at once, are replaced and
// removed like the others, and a saved scope never misses a queued one.
TEST(VectorIndexQueueTest, QueuedVectorsAreSearchedAndLandInTheIndex) {
  internal::VectorIndexOptions o;
  o.dimension = 16;
  o.max_queued_vectors = 64;  // stores wait for room
  internal::VectorIndex index(o);
  std::mt19937 rng(3);
  const Key128 scope{1, 1};
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 3000; ++i) {
    vectors.push_back(RandomUnit(rng, 16));
    index.AddLater(scope, Key128{0, static_cast<uint64_t>(i)}, Key128{}, 0,
                   vectors.back().data());
    // Found at once, queued or not.
    const auto found = index.Search(scope, vectors.back().data(), 1);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].entry, (Key128{0, static_cast<uint64_t>(i)}));
    EXPECT_LE(index.queued_vectors(), 64);
  }
  // Entry 7 queued again with another vector: only the new one is found.
  index.AddLater(scope, Key128{0, 7}, Key128{}, 0, vectors[8].data());
  index.Remove(Key128{0, 9});
  index.AddLater(scope, Key128{0, 10}, Key128{}, 0, vectors[10].data());
  index.Remove(Key128{0, 10});  // removed while queued
  index.WaitForQueue();
  EXPECT_EQ(index.queued_vectors(), 0);
  EXPECT_EQ(index.live_vectors(), 2998);
  for (int i : {9, 10}) {
    for (const auto& c : index.Search(scope, vectors[i].data(), 3)) {
      EXPECT_NE(c.entry, (Key128{0, static_cast<uint64_t>(i)}));
    }
  }
  const auto seven = index.Search(scope, vectors[8].data(), 2);
  ASSERT_EQ(seven.size(), 2u);
  EXPECT_NEAR(seven[0].similarity, 1.0, 1e-4);
  EXPECT_NEAR(seven[1].similarity, 1.0, 1e-4);  // 7 and 8 alike now
  EXPECT_NE(index.Search(scope, vectors[7].data(), 1).at(0).entry,
            (Key128{0, 7}));
  TempDir dir;
  ASSERT_TRUE(index.SaveScope(scope, dir.path(), 2).ok());
  // Two threads store while a third searches: every stored vector ends up
  // findable.
  std::thread a([&] {
    for (int i = 0; i < 500; ++i) {
      index.AddLater(scope, Key128{1, static_cast<uint64_t>(i)}, Key128{}, 0,
                     vectors[i].data());
    }
  });
  std::thread b([&] {
    for (int i = 500; i < 1000; ++i) {
      index.AddLater(scope, Key128{1, static_cast<uint64_t>(i)}, Key128{}, 0,
                     vectors[i].data());
    }
  });
  for (int n = 0; n < 300; ++n) {
    EXPECT_FALSE(index.Search(scope, vectors[n].data(), 2).empty());
  }
  a.join();
  b.join();
  index.WaitForQueue();
  EXPECT_EQ(index.live_vectors(), 3998);
}

// HNSW search runs on the calling thread with a reused per-thread visited
// table: scopes of different sizes searched alternately, from two threads,
// past the table's reset period, must give the same answers as fresh state.
TEST(VectorIndexHnswTest, ReusedSearchStateGivesCorrectResults) {
  internal::VectorIndexOptions o;
  o.dimension = 16;
  o.kind = internal::VectorIndexKind::kHnsw;
  o.hnsw_min_vectors = 50;
  internal::VectorIndex index(o);
  std::mt19937 rng(11);
  const Key128 big{1, 1}, small{2, 2};
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 1500; ++i) {
    vectors.push_back(RandomUnit(rng, 16));
    index.Add(i < 1200 ? big : small, Key128{0, static_cast<uint64_t>(i)},
              Key128{9, 9}, 0, vectors.back().data());
  }
  ASSERT_TRUE(index.IsHnsw(big));
  ASSERT_TRUE(index.IsHnsw(small));
  auto check = [&](int offset) {
    for (int n = 0; n < 600; ++n) {
      const int i = (n * 7 + offset) % 1500;
      const Key128 scope = i < 1200 ? big : small;
      const std::vector<internal::VectorCandidate> found =
          index.Search(scope, vectors[i].data(), 5);
      ASSERT_EQ(found.size(), 5u);
      EXPECT_EQ(found[0].entry, (Key128{0, static_cast<uint64_t>(i)}));
      for (size_t r = 0; r < found.size(); ++r) {
        const std::vector<float>& v = vectors[found[r].entry.lo];
        float dot = 0;
        for (int d = 0; d < 16; ++d) dot += v[d] * vectors[i][d];
        EXPECT_NEAR(found[r].similarity, dot, 1e-4);
        if (r > 0) {
          EXPECT_LE(found[r].similarity, found[r - 1].similarity);
        }
      }
    }
  };
  std::thread other(check, 3);
  check(0);
  other.join();
}

// An embedder that misbehaves on purpose.
class BrokenEmbedder : public Embedder {
 public:
  explicit BrokenEmbedder(bool nan) : nan_(nan) {}
  std::string name() const override { return "broken"; }
  int dimension() const override { return 8; }
  absl::Status Embed(absl::Span<const std::string> texts,
                     std::vector<float>* out) const override {
    out->assign(texts.size() * (nan_ ? 8 : 7), nan_ ? std::nanf("") : 1.0f);
    return absl::OkStatus();
  }

 private:
  bool nan_;
};

class SemanticCacheTest : public ::testing::Test {
 protected:
  void Open(std::shared_ptr<const Embedder> embedder = nullptr) {
    client_.reset();
    cache_.reset();
    Options o;
    o.stats_flush_interval = absl::InfiniteDuration();
    o.embedder = embedder ? embedder : std::make_shared<BuiltinEmbedder>();
    absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(dir_.path(), o);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    client_ = std::make_unique<CachedClient>(
        *cache_, [this](const Request& r) -> absl::StatusOr<Response> {
          ++calls_;
          return MakeAnswer("answer to " + r.messages.back().content);
        });
  }
  absl::StatusOr<Response> Ask(const Request& r) {
    return client_->Complete(r);
  }

  TempDir dir_;
  int calls_ = 0;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CachedClient> client_;
};

TEST_F(SemanticCacheTest, ParaphraseHitsHardNegativesMiss) {
  Open();
  ASSERT_TRUE(Ask(MakeRequest("Explain recursion")).ok());
  absl::StatusOr<Response> near = Ask(MakeRequest("What is recursion?"));
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(near->cache_status, CacheStatus::kSemanticHit);
  EXPECT_GT(near->similarity, 0.7);
  EXPECT_LT(near->similarity, 1.0);
  EXPECT_EQ(near->text, "answer to Explain recursion");
  EXPECT_EQ(calls_, 1);

  const std::pair<const char*, const char*> negatives[] = {
      {"Find flights to Rome for next week",
       "Find flights to Milan for next week"},
      {"Is 10 mg of melatonin safe for adults?",
       "Is 100 mg of melatonin safe for adults?"},
      {"How do I start the nginx service on Ubuntu?",
       "How do I stop the nginx service on Ubuntu?"},
      {"convert 20 GBP to JPY", "convert 20 JPY to GBP"},
      {"What changed in Python 3.11 typing?",
       "What changed in Python 3.12 typing?"},
  };
  for (const auto& [stored, asked] : negatives) {
    ASSERT_TRUE(Ask(MakeRequest(stored)).ok());
    const int before = calls_;
    absl::StatusOr<Response> r = Ask(MakeRequest(asked));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->cache_status, CacheStatus::kMiss) << stored << " | " << asked;
    EXPECT_EQ(calls_, before + 1);
  }
  const LedgerRow total = cache_->Report()->total;
  EXPECT_EQ(total.semantic_hits, 1);
}

TEST_F(SemanticCacheTest, OtherContextTenantModelOrTemperatureNeverHit) {
  Open();
  const std::string q = "Explain recursion";
  const std::string p = "What is recursion?";
  ASSERT_TRUE(Ask(MakeRequest(q)).ok());
  std::vector<Request> others;
  Request r = MakeRequest(p, "tenant-b");
  others.push_back(r);
  others.push_back(MakeRequest(p, "tenant-a", "gpt-4o"));
  others.push_back(MakeRequest(p, "tenant-a", "gpt-4o-mini", "anthropic"));
  r = MakeRequest(p);
  r.params.temperature = 0.2;
  others.push_back(r);
  r = MakeRequest(p);
  r.messages[0].content = "You are a pirate.";
  others.push_back(r);
  r = MakeRequest(p);
  r.messages.insert(r.messages.begin() + 1,
                    {{"user", "I use the mobile app", "", "", ""},
                     {"assistant", "OK.", "", "", ""}});
  others.push_back(r);
  for (const Request& other : others) {
    absl::StatusOr<Response> resp = Ask(other);
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(resp->cache_status, CacheStatus::kMiss);
  }
  // The same conversation context does hit.
  Request a = MakeRequest(q), b = MakeRequest(p);
  for (Request* x : {&a, &b}) {
    x->messages.insert(
        x->messages.begin() + 1,
        {{"user", "Hi", "", "", ""}, {"assistant", "Hello!", "", "", ""}});
  }
  ASSERT_TRUE(Ask(a).ok());
  EXPECT_EQ(Ask(b)->cache_status, CacheStatus::kSemanticHit);
}

TEST_F(SemanticCacheTest, CommonFollowUpsInOtherConversationsDoNotCrowdOut) {
  Open();
  auto in_conversation = [](int c, const std::string& text) {
    Request r = MakeRequest(text);
    r.messages.insert(
        r.messages.begin() + 1,
        {{"user", "My router model is X" + std::to_string(c), "", "", ""},
         {"assistant", "Try restarting it.", "", "", ""}});
    return r;
  };
  // The same follow-up in 30 conversations: more than top_k candidates
  // that are as similar as the right one.
  for (int c = 0; c < 30; ++c) {
    ASSERT_TRUE(
        Ask(in_conversation(c, "Thanks. And what if that doesn't work?")).ok());
  }
  for (int c : {0, 17, 29}) {
    absl::StatusOr<Response> r =
        Ask(in_conversation(c, "thanks, and what if that doesn't work"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->cache_status, CacheStatus::kSemanticHit) << c;
    EXPECT_EQ(r->entry_key,
              ComputeKeys(
                  in_conversation(c, "Thanks. And what if that doesn't work?"))
                  ->exact);
  }
}

TEST_F(SemanticCacheTest, RestartKeepsSemanticHitsWithOrWithoutIndexFiles) {
  Open();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Ask(MakeRequest("How do I export invoice number " +
                                std::to_string(1000 + i) + " to PDF"))
                    .ok());
  }
  ASSERT_TRUE(Ask(MakeRequest("Explain recursion")).ok());
  const Request para = MakeRequest("what is recursion?");
  const std::optional<Key128> expected = Ask(para)->entry_key;
  ASSERT_TRUE(expected.has_value());
  const std::string index_dir = dir_.path() + "/semantic-index";
  for (int round = 0; round < 3; ++round) {
    Open();  // closes and saves the index, reopens
    if (round == 1) std::filesystem::remove_all(index_dir);
    if (round == 2) {
      for (const auto& f : std::filesystem::directory_iterator(index_dir)) {
        std::ofstream(f.path(), std::ios::trunc) << "corrupt";
      }
    }
    if (round > 0) Open();  // reopen after damaging the files
    // Rebuilt in the background (issue 14, defect 8): exact hits meanwhile.
    cache_->WaitForSemanticIndex();
    EXPECT_FALSE(cache_->GetSemanticStats().rebuilding);
    EXPECT_EQ(cache_->GetSemanticStats().vectors, 21);
    absl::StatusOr<Response> r = Ask(para);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->cache_status, CacheStatus::kSemanticHit) << "round " << round;
    EXPECT_EQ(r->entry_key, expected);
  }
  EXPECT_EQ(calls_, 21);
}

TEST_F(SemanticCacheTest, ABackgroundRebuildIsNeverSavedHalfDone) {
  // After a crash the index files are stale: Open rebuilds in the
  // background. A close during the rebuild must not save a partial index
  // that a later open would trust.
  Open();
  constexpr int kEntries = 3000;
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_TRUE(Ask(MakeRequest("How do I export invoice number " +
                                std::to_string(100000 + i) + " to PDF"))
                    .ok());
  }
  client_.reset();
  cache_.reset();
  const std::string index_dir = dir_.path() + "/semantic-index";
  std::filesystem::remove_all(index_dir);
  for (int round = 0; round < 3; ++round) {
    Open();
    // Closed at once, mid-rebuild or not (the test holds either way).
    client_.reset();
    cache_.reset();
  }
  Open();
  cache_->WaitForSemanticIndex();
  EXPECT_EQ(cache_->GetSemanticStats().vectors, kEntries);
  EXPECT_EQ(cache_->GetSemanticStats().unreadable_vectors, 0);
  absl::StatusOr<Response> r =
      Ask(MakeRequest("how do i export invoice number 102999 to pdf?"));
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->cache_status, CacheStatus::kMiss);
  // Ended, it is saved at close: the next open needs no rebuild.
  Open();
  EXPECT_FALSE(cache_->GetSemanticStats().rebuilding);
  EXPECT_EQ(cache_->GetSemanticStats().vectors, kEntries);
}

// A paid embedder: the built-in one with a price, to see the cost of
// caching in the ledger.
class PricedEmbedder : public BuiltinEmbedder {
 public:
  int64_t CostNanoDollars(int64_t tokens) const override {
    return tokens * 20;  // $0.02 per million tokens
  }
};

TEST_F(SemanticCacheTest, PaidEmbeddingsAreChargedAsTheCostOfCaching) {
  Open(std::make_shared<PricedEmbedder>());
  ASSERT_TRUE(Ask(MakeRequest("Explain recursion")).ok());
  ASSERT_EQ(Ask(MakeRequest("What is recursion?"))->cache_status,
            CacheStatus::kSemanticHit);
  const LedgerRow total = cache_->Report()->total;
  // Two lookups embedded (the first one's vector is reused for its store).
  EXPECT_GT(total.embedding_nusd, 0);
  EXPECT_EQ(total.embedding_nusd % 20, 0);
  EXPECT_NEAR(total.net_saved_dollars(),
              (total.saved_nusd - total.embedding_nusd) * 1e-9, 1e-12);
  EXPECT_LT(total.net_saved_dollars(), total.saved_dollars());
}

TEST_F(SemanticCacheTest, NamespaceThresholdsApply) {
  client_.reset();
  cache_.reset();
  Options o;
  o.embedder = std::make_shared<BuiltinEmbedder>();
  o.semantic.namespace_threshold["strict-tenant"] = 0.999;
  auto cache = *Cache::Open(dir_.path(), o);
  CachedClient client(*cache, [](const Request&) -> absl::StatusOr<Response> {
    return MakeAnswer("x");
  });
  for (const char* ns : {"strict-tenant", "relaxed-tenant"}) {
    ASSERT_TRUE(client.Complete(MakeRequest("Explain recursion", ns)).ok());
  }
  EXPECT_EQ(client.Complete(MakeRequest("What is recursion?", "strict-tenant"))
                ->cache_status,
            CacheStatus::kMiss);
  EXPECT_EQ(
      client.Complete(MakeRequest("What is recursion?", "relaxed-tenant"))
          ->cache_status,
      CacheStatus::kSemanticHit);
}

TEST_F(SemanticCacheTest, BrokenEmbeddersLeaveCallsToTheExactTier) {
  // Issue 14: a wrong-size or NaN vector failed every call that was not an
  // exact hit. Now the call goes on with the exact tier, and the error is
  // counted with a message that names it.
  for (bool nan : {true, false}) {
    TempDir dir;
    Options o;
    o.embedder = std::make_shared<BrokenEmbedder>(nan);
    auto cache = *Cache::Open(dir.path(), o);
    CachedClient client(*cache, [](const Request&) -> absl::StatusOr<Response> {
      return MakeAnswer("x");
    });
    absl::StatusOr<Response> r = client.Complete(MakeRequest("hello there"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->cache_status, CacheStatus::kMiss);
    EXPECT_EQ(client.Complete(MakeRequest("hello there"))->cache_status,
              CacheStatus::kExactHit);
    absl::StatusOr<CacheStats> stats = cache->Stats();
    EXPECT_GT(stats->embedder_errors, 0);
    EXPECT_THAT(stats->last_error,
                ::testing::HasSubstr(nan ? "NaN" : "dimension"));
  }
}

// An embedder that throws (issue 14: it escaped Complete()).
class ThrowingEmbedder : public Embedder {
 public:
  std::string name() const override { return "throwing"; }
  int dimension() const override { return 8; }
  absl::Status Embed(absl::Span<const std::string>,
                     std::vector<float>*) const override {
    throw std::runtime_error("model server exploded");
  }
};

// The built-in embedder, counting the texts it is asked to embed.
class CountingEmbedder : public Embedder {
 public:
  std::string name() const override { return inner_.name(); }
  int dimension() const override { return inner_.dimension(); }
  absl::Status Embed(absl::Span<const std::string> texts,
                     std::vector<float>* out) const override {
    texts_ += static_cast<int>(texts.size());
    return inner_.Embed(texts, out);
  }
  int texts() const { return texts_; }

 private:
  BuiltinEmbedder inner_;
  mutable std::atomic<int> texts_{0};
};

// Issue 13: a multi-megabyte prompt costs no semantic work (it took
// seconds), and a call with the semantic tier off does none either.
TEST_F(SemanticCacheTest, HugePromptsAndSemanticOffCallsDoNoSemanticWork) {
  auto embedder = std::make_shared<CountingEmbedder>();
  Open(embedder);
  std::string huge = "Summarize this log, please: ";
  while (huge.size() < 3 * 1024 * 1024) huge += "GET /index.html 200 0.003s; ";
  absl::StatusOr<Response> r = Ask(MakeRequest(huge));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cache_status, CacheStatus::kMiss);
  EXPECT_THAT(r->semantic_decision, ::testing::HasSubstr("max_prompt_bytes"));
  EXPECT_EQ(embedder->texts(), 0);
  Cache::SemanticStats stats = cache_->GetSemanticStats();
  EXPECT_EQ(stats.long_prompts_skipped, 1);
  EXPECT_EQ(stats.vectors + stats.queued_vectors, 0);
  // Still an exact hit; a rewording of it is not looked up.
  EXPECT_EQ(Ask(MakeRequest(huge))->cache_status, CacheStatus::kExactHit);
  std::string reworded = huge;
  reworded[0] = 's';
  EXPECT_EQ(Ask(MakeRequest(reworded))->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(embedder->texts(), 0);
  EXPECT_EQ(cache_->GetSemanticStats().long_prompts_skipped, 2);
  EXPECT_FALSE(cache_->ExplainSemantic(MakeRequest(huge)).ok());

  // Semantic off for one call: no embedding, no vector stored, so a
  // rewording asked with the tier on does not find it.
  CallOptions off;
  off.semantic = false;
  r = client_->Complete(MakeRequest("How do I reset my router password?"), off);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(embedder->texts(), 0);
  cache_->WaitForSemanticIndex();
  EXPECT_EQ(cache_->GetSemanticStats().vectors, 0);
  r = Ask(MakeRequest("how do i reset my router password"));
  EXPECT_EQ(r->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(embedder->texts(), 1);  // the lookup; its vector is stored
  EXPECT_EQ(
      Ask(MakeRequest("How do I reset my router password ?"))->cache_status,
      CacheStatus::kSemanticHit);
  EXPECT_EQ(cache_->GetSemanticStats().long_prompts_skipped, 2);
}

TEST_F(SemanticCacheTest, AThrowingEmbedderIsCountedAndBadIndexOptionsFail) {
  TempDir dir;
  Options o;
  o.embedder = std::make_shared<ThrowingEmbedder>();
  auto cache = *Cache::Open(dir.path(), o);
  CachedClient client(*cache, [](const Request&) -> absl::StatusOr<Response> {
    return MakeAnswer("x");
  });
  absl::StatusOr<Response> r = client.Complete(MakeRequest("hello there"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cache_status, CacheStatus::kMiss);
  EXPECT_THAT(cache->Stats()->last_error,
              ::testing::HasSubstr("model server exploded"));
  cache.reset();
  // hnsw_m = 0 once passed Open and crashed in FAISS.
  TempDir other;
  Options bad;
  bad.embedder = std::make_shared<BuiltinEmbedder>();
  for (int m : {0, 1, 100000}) {
    bad.semantic.hnsw_m = m;
    absl::StatusOr<std::unique_ptr<Cache>> c = Cache::Open(other.path(), bad);
    ASSERT_FALSE(c.ok()) << m;
    EXPECT_NE(c.status().message().find("hnsw_m"), absl::string_view::npos);
  }
  bad.semantic.hnsw_m = 16;
  bad.semantic.hnsw_ef_search = 0;
  EXPECT_FALSE(Cache::Open(other.path(), bad).ok());
  bad.semantic.hnsw_ef_search = 32;
  bad.semantic.threshold = std::nan("");
  EXPECT_FALSE(Cache::Open(other.path(), bad).ok());
  bad.semantic.threshold.reset();
  for (auto spoil : std::vector<std::function<void(SemanticOptions&)>>{
           [](SemanticOptions& so) { so.ivf_probes = 0; },
           [](SemanticOptions& so) { so.ivf_max_list_size = 8; },
           [](SemanticOptions& so) { so.max_queued_vectors = 0; }}) {
    Options spoiled = bad;
    spoil(spoiled.semantic);
    absl::StatusOr<std::unique_ptr<Cache>> c =
        Cache::Open(other.path(), spoiled);
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.status().message(),
                ::testing::AnyOf(::testing::HasSubstr("ivf_probes"),
                                 ::testing::HasSubstr("ivf_max_list_size"),
                                 ::testing::HasSubstr("max_queued_vectors")));
  }
  EXPECT_TRUE(Cache::Open(other.path(), bad).ok());
}

TEST_F(SemanticCacheTest, WordlessPromptsUseTheExactTierOnly) {
  Open();
  absl::StatusOr<Response> first = Ask(MakeRequest("???"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(Ask(MakeRequest("???"))->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(Ask(MakeRequest("?!"))->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(cache_->GetSemanticStats().vectors, 0);
}

TEST_F(SemanticCacheTest, AnotherEmbedderIsAnErrorUntilReembedded) {
  Open();
  ASSERT_TRUE(Ask(MakeRequest("Explain recursion")).ok());
  client_.reset();
  cache_.reset();
  Options o;
  o.embedder = std::make_shared<BuiltinEmbedder>(BuiltinEmbedderOptions{256});
  absl::StatusOr<std::unique_ptr<Cache>> other = Cache::Open(dir_.path(), o);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("builtin-hash-v1/128"),
            absl::string_view::npos);
  o.reembed_on_open = true;
  // No calibration ships for 256 dimensions: judged by similarity.
  o.semantic.threshold = 0.7;
  other = Cache::Open(dir_.path(), o);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ((*other)->GetSemanticStats().vectors, 1);
  RequestKeys keys = *ComputeKeys(MakeRequest("What is recursion?"));
  absl::StatusOr<Response> hit =
      CacheTiers(**other).FindSemantic(MakeRequest("What is recursion?"), keys);
  EXPECT_TRUE(hit.ok()) << hit.status();
}

TEST_F(SemanticCacheTest, ImportAndReembedGiveEntriesVectors) {
  // Entries stored without an embedder get vectors from reembed_on_open.
  TempDir plain_dir;
  std::stringstream dump;
  {
    Options o;
    auto plain = *Cache::Open(plain_dir.path(), o);
    CachedClient client(*plain, [](const Request&) -> absl::StatusOr<Response> {
      return MakeAnswer("use the settings page");
    });
    ASSERT_TRUE(client.Complete(MakeRequest("Explain recursion")).ok());
    ASSERT_EQ(*plain->Export(dump), 1);
  }
  const Request para = MakeRequest("What is recursion?");
  Options o;
  o.embedder = std::make_shared<BuiltinEmbedder>();
  o.reembed_on_open = true;
  {
    auto filled = *Cache::Open(plain_dir.path(), o);
    EXPECT_EQ(filled->GetSemanticStats().vectors, 1);
    EXPECT_TRUE(
        CacheTiers(*filled).FindSemantic(para, *ComputeKeys(para)).ok());
  }
  // Import into a cache with an embedder writes vectors too.
  Open();
  std::stringstream in(dump.str());
  ASSERT_EQ(*cache_->Import(in), 1);
  EXPECT_EQ(cache_->GetSemanticStats().vectors, 1);
  absl::StatusOr<Response> hit = Ask(para);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->cache_status, CacheStatus::kSemanticHit);
  EXPECT_EQ(hit->text, "use the settings page");
}

TEST_F(SemanticCacheTest, FeedbackStopsThePairingAndCountsAFalseHit) {
  Open();
  ASSERT_TRUE(Ask(MakeRequest("Explain recursion")).ok());
  const Request para = MakeRequest("What is recursion?");
  absl::StatusOr<Response> hit = Ask(para);
  ASSERT_EQ(hit->cache_status, CacheStatus::kSemanticHit);
  const Key128 request_key = *hit->request_key;
  const Key128 entry_key = *hit->entry_key;
  EXPECT_TRUE(absl::IsNotFound(
      cache_->ReportFalseHit(entry_key, request_key)));  // swapped: no such hit
  ASSERT_TRUE(cache_->ReportFalseHit(request_key, entry_key).ok());
  auto hits = *cache_->SemanticHitsOf(entry_key);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_TRUE(hits[0].reported_wrong);
  EXPECT_EQ(hits[0].query, "What is recursion?");
  EXPECT_GT(hits[0].similarity, 0.7);
  Open();  // feedback survives a restart
  absl::StatusOr<Response> again = Ask(para);
  EXPECT_EQ(again->cache_status, CacheStatus::kMiss);
  const LedgerRow total = cache_->Report()->total;
  EXPECT_EQ(total.false_hits, 1);
  EXPECT_EQ(total.semantic_hits, 1);
}

TEST_F(SemanticCacheTest, PurgeRemovesVectorsAndPerCallControls) {
  Open();
  ASSERT_TRUE(Ask(MakeRequest("Explain recursion")).ok());
  const Request para = MakeRequest("What is recursion?");
  CallOptions off;
  off.semantic = false;
  EXPECT_EQ(client_->Complete(para, off)->cache_status, CacheStatus::kMiss);
  CallOptions strict;
  strict.threshold = 0.999;
  const Request para2 = MakeRequest("how do I change my email-address?");
  EXPECT_NE(client_->Complete(para2, strict)->cache_status,
            CacheStatus::kSemanticHit);
  PurgeFilter all;
  EXPECT_EQ(*cache_->Purge(all), 3);
  EXPECT_EQ(cache_->GetSemanticStats().vectors, 0);
  EXPECT_EQ(Ask(para)->cache_status, CacheStatus::kMiss);
}

}  // namespace
}  // namespace promptcache

// Fault injection (issue 14): RocksDB's files fail on cue under a working
// cache (a full disk, EIO on reads and syncs, a torn write). No crash, no
// wrong answer, a clear count of what failed, and recovery once the fault is
// gone.
#include <atomic>
#include <memory>
#include <string>

#include "cache/cache_impl.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "promptcache/cached_client.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

// What the file system does wrong, switched on and off by the test.
struct Faults {
  std::atomic<bool> full_disk{false};  // appends fail (ENOSPC)
  std::atomic<bool> torn{false};       // an append writes half, then fails
  std::atomic<bool> sync_eio{false};   // syncs fail (EIO)
  std::atomic<bool> read_eio{false};   // table reads fail (EIO)
};

class FaultyWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file,
                     Faults* faults)
      : FSWritableFileOwnerWrapper(std::move(file)), faults_(faults) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (faults_->torn.load()) {
      target()
          ->Append(rocksdb::Slice(data.data(), data.size() / 2), options, dbg)
          .PermitUncheckedError();
      return rocksdb::IOStatus::IOError("injected: torn write");
    }
    if (faults_->full_disk.load()) {
      return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    }
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo&,
                           rocksdb::IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (faults_->sync_eio.load()) {
      return rocksdb::IOStatus::IOError("injected: EIO on sync");
    }
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return Sync(options, dbg);
  }

 private:
  Faults* faults_;
};

class FaultyRandomAccessFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultyRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file,
                         Faults* faults)
      : FSRandomAccessFileOwnerWrapper(std::move(file)), faults_(faults) {}
  rocksdb::IOStatus Read(uint64_t offset, size_t n,
                         const rocksdb::IOOptions& options,
                         rocksdb::Slice* result, char* scratch,
                         rocksdb::IODebugContext* dbg) const override {
    if (faults_->read_eio.load()) {
      return rocksdb::IOStatus::IOError("injected: EIO on read");
    }
    return target()->Read(offset, n, options, result, scratch, dbg);
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (faults_->read_eio.load()) {
      for (size_t i = 0; i < num_reqs; ++i) {
        reqs[i].status = rocksdb::IOStatus::IOError("injected: EIO on read");
      }
      return rocksdb::IOStatus::OK();
    }
    return target()->MultiRead(reqs, num_reqs, options, dbg);
  }

 private:
  Faults* faults_;
};

class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultyFileSystem(Faults* faults)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), faults_(faults) {}
  const char* Name() const override { return "FaultyFileSystem"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* file,
      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, file, dbg);
    if (s.ok())
      *file = std::make_unique<FaultyWritableFile>(std::move(*file), faults_);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* file,
      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s =
        target()->ReopenWritableFile(name, options, file, dbg);
    if (s.ok())
      *file = std::make_unique<FaultyWritableFile>(std::move(*file), faults_);
    return s;
  }
  rocksdb::IOStatus NewRandomAccessFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSRandomAccessFile>* file,
      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s =
        target()->NewRandomAccessFile(name, options, file, dbg);
    if (s.ok()) {
      *file =
          std::make_unique<FaultyRandomAccessFile>(std::move(*file), faults_);
    }
    return s;
  }

 private:
  Faults* faults_;
};

class FaultInjectionTest : public ::testing::Test {
 protected:
  FaultInjectionTest()
      : fs_(std::make_shared<FaultyFileSystem>(&faults_)),
        env_(rocksdb::NewCompositeEnv(fs_)) {
    internal::SetEnvForTesting(env_.get());
  }
  ~FaultInjectionTest() override {
    cache_.reset();
    internal::SetEnvForTesting(nullptr);
  }

  void Open(bool sync_writes = false) {
    client_.reset();
    cache_.reset();
    Options options;
    options.sync_writes = sync_writes;
    options.stats_flush_interval = absl::InfiniteDuration();
    // Reads must reach the (faulty) files: a warm-up that loaded answers
    // into memory would serve them past an injected read error.
    options.warm_hot_cache_on_open = false;
    absl::StatusOr<std::unique_ptr<Cache>> cache =
        Cache::Open(dir_.path(), options);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    client_ = std::make_unique<CachedClient>(
        *cache_, [this](const Request& r) -> absl::StatusOr<Response> {
          ++calls_;
          return MakeAnswer("answer to " + r.messages.back().content);
        });
  }
  absl::StatusOr<Response> Ask(const std::string& prompt) {
    return client_->Complete(MakeRequest(prompt));
  }

  Faults faults_;
  std::shared_ptr<FaultyFileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  TempDir dir_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CachedClient> client_;
  int calls_ = 0;
};

TEST_F(FaultInjectionTest, AFullDiskLeavesAnswersServedAndRecoversAfter) {
  Open();
  ASSERT_EQ(Ask("before the disk filled")->cache_status, CacheStatus::kMiss);
  faults_.full_disk = true;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Response> r = Ask("while full " + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status();  // served, not stored
    EXPECT_EQ(r->text, "answer to while full " + std::to_string(i));
    EXPECT_FALSE(r->stored);
  }
  // What was stored before still hits, with its own answer.
  absl::StatusOr<Response> old = Ask("before the disk filled");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(old->text, "answer to before the disk filled");
  absl::StatusOr<CacheStats> stats = cache_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->store_errors, 3);
  EXPECT_THAT(stats->last_error, ::testing::HasSubstr("no space"));
  // Space again. RocksDB treats a failed log write as fatal until the
  // database is reopened (Resume() cannot clear it): the cache keeps
  // serving, and a reopen brings stores back with nothing lost.
  faults_.full_disk = false;
  Open();
  absl::StatusOr<Response> after = Ask("after the disk was freed");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->stored) << cache_->Stats()->last_error;
  EXPECT_EQ(Ask("after the disk was freed")->cache_status,
            CacheStatus::kExactHit);
  EXPECT_EQ(Ask("before the disk filled")->cache_status,
            CacheStatus::kExactHit);
  EXPECT_EQ(Ask("while full 1")->cache_status, CacheStatus::kMiss);
}

TEST_F(FaultInjectionTest, FailedSyncsAreStoreErrorsNotLostAnswers) {
  Open(/*sync_writes=*/true);
  faults_.sync_eio = true;
  absl::StatusOr<Response> r = Ask("synced write");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "answer to synced write");
  EXPECT_FALSE(r->stored);
  EXPECT_GE(cache_->Stats()->store_errors, 1);
  faults_.sync_eio = false;
  Open(/*sync_writes=*/true);
  ASSERT_TRUE(Ask("synced write").ok());
  EXPECT_EQ(Ask("synced write")->cache_status, CacheStatus::kExactHit);
}

TEST_F(FaultInjectionTest, ALedgerWriteThatFailsIsAStoreError) {
  Open();
  faults_.full_disk = true;
  const int64_t before = cache_->Stats()->store_errors;
  ModelClient down = [](const Request&) -> absl::StatusOr<Response> {
    return absl::UnavailableError("upstream down");
  };
  // The upstream's failure is returned; its ledger row could not be
  // written, which is counted rather than failing or hiding the call.
  absl::StatusOr<Response> r =
      client_->Complete(MakeRequest("while the upstream is down"), {}, down);
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(cache_->Stats()->store_errors, before + 1);
}

TEST_F(FaultInjectionTest, ReadErrorsAreMissesNeverWrongAnswers) {
  Open();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Ask("q" + std::to_string(i)).ok());
  Open();  // flushed to table files; the block cache starts cold
  faults_.read_eio = true;
  const int calls_before = calls_;
  absl::StatusOr<Response> r = Ask("q7");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "answer to q7");
  EXPECT_EQ(calls_, calls_before + 1);  // went upstream
  faults_.read_eio = false;
  EXPECT_GE(cache_->Stats()->lookup_errors, 1);
  absl::StatusOr<Response> again = Ask("q3");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(again->text, "answer to q3");
}

TEST_F(FaultInjectionTest, ATornWriteLosesOnlyThatWrite) {
  Open();
  ASSERT_TRUE(Ask("whole one").ok());
  faults_.torn = true;
  absl::StatusOr<Response> torn = Ask("torn one");
  ASSERT_TRUE(torn.ok()) << torn.status();
  EXPECT_FALSE(torn->stored);
  faults_.torn = false;
  client_.reset();
  cache_.reset();
  // Reopened: the half-written record is skipped, the rest is whole.
  Open();
  EXPECT_EQ(Ask("whole one")->cache_status, CacheStatus::kExactHit);
  absl::StatusOr<Response> retried = Ask("torn one");
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->text, "answer to torn one");
  EXPECT_EQ(Ask("torn one")->cache_status, CacheStatus::kExactHit);
}

}  // namespace
}  // namespace promptcache

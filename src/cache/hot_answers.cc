#include "cache/hot_answers.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace promptcache::internal {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// A record in a segment: this header, then the packed answer, padded to 8.
struct RecordHeader {
  Key128 key;
  uint32_t size;  // of the packed answer
  uint32_t reserved;
};
static_assert(sizeof(RecordHeader) == 24);

// The packed answer: this header, then finish reason, tool calls and text.
struct PackedHeader {
  int64_t input_tokens;
  int64_t output_tokens;
  int64_t cached_input_tokens;
  int64_t cache_write_input_tokens;
  int64_t upstream_latency_us;
  uint32_t text_size;
  uint32_t tool_calls_size;
  uint32_t finish_reason_size;
  uint8_t estimated;
};

size_t PackedSize(const Answer& a) {
  return sizeof(PackedHeader) + a.finish_reason.size() +
         a.tool_calls_json.size() + a.text.size();
}

size_t RecordSize(size_t packed) {
  return (sizeof(RecordHeader) + packed + 7) & ~size_t{7};
}

void Pack(const Answer& a, char* p) {
  const PackedHeader h{a.usage.input_tokens,
                       a.usage.output_tokens,
                       a.usage.cached_input_tokens,
                       a.usage.cache_write_input_tokens,
                       absl::ToInt64Microseconds(a.upstream_latency),
                       static_cast<uint32_t>(a.text.size()),
                       static_cast<uint32_t>(a.tool_calls_json.size()),
                       static_cast<uint32_t>(a.finish_reason.size()),
                       static_cast<uint8_t>(a.usage.estimated ? 1 : 0)};
  std::memcpy(p, &h, sizeof(h));
  p += sizeof(h);
  std::memcpy(p, a.finish_reason.data(), a.finish_reason.size());
  p += a.finish_reason.size();
  std::memcpy(p, a.tool_calls_json.data(), a.tool_calls_json.size());
  p += a.tool_calls_json.size();
  std::memcpy(p, a.text.data(), a.text.size());
}

void Unpack(const char* p, Answer* out) {
  PackedHeader h;
  std::memcpy(&h, p, sizeof(h));
  p += sizeof(h);
  out->finish_reason.assign(p, h.finish_reason_size);
  p += h.finish_reason_size;
  out->tool_calls_json.assign(p, h.tool_calls_size);
  p += h.tool_calls_size;
  out->text.assign(p, h.text_size);
  out->usage.input_tokens = h.input_tokens;
  out->usage.output_tokens = h.output_tokens;
  out->usage.cached_input_tokens = h.cached_input_tokens;
  out->usage.cache_write_input_tokens = h.cache_write_input_tokens;
  out->usage.estimated = h.estimated != 0;
  out->upstream_latency = absl::Microseconds(h.upstream_latency_us);
}

// Sixteen segments a shard where they can be 4-256 KiB (eviction copies at
// most one segment under the shard's lock); shards smaller than two 4 KiB
// segments get two halves.
size_t SegmentBytesFor(size_t shard_capacity) {
  if (shard_capacity < 2 * 4096)
    return std::max<size_t>(shard_capacity / 2, 64);
  size_t segment = 4096;
  while (segment < (size_t{256} << 10) && segment * 2 * 16 <= shard_capacity) {
    segment *= 2;
  }
  return segment;
}

}  // namespace

HotAnswers::HotAnswers(size_t capacity_bytes,
                       std::unique_ptr<BlockCacheReservation> charge_to,
                       CountsSink counts_sink)
    : shard_capacity_(capacity_bytes / kShards),
      segment_bytes_(SegmentBytesFor(shard_capacity_)),
      max_segments_(static_cast<uint32_t>(
          std::max<size_t>(2, shard_capacity_ / 8 * 7 / segment_bytes_))),
      huge_pages_(static_cast<size_t>(max_segments_) * segment_bytes_ >=
                  kHugePage),
      reservation_(std::move(charge_to)),
      counts_sink_(std::move(counts_sink)) {}

HotAnswers::~HotAnswers() {
  for (Shard& shard : shards_) {
    LeanMutexLock lock(&shard.mu);
    if (shard.mapping != nullptr) munmap(shard.mapping, shard.mapping_bytes);
  }
}

size_t HotAnswers::RecordBytes(const Answer& answer) {
  return RecordSize(PackedSize(answer));
}

char* HotAnswers::SegmentData(const Shard& shard, uint32_t segment) const {
  return shard.region + static_cast<size_t>(segment) * segment_bytes_;
}

bool HotAnswers::Get(const Key128& key, int64_t now_us, Answer* out) {
  Shard& shard = ShardOf(key);
  int64_t delta = 0;
  {
    LeanMutexLock lock(&shard.mu);
    // The control bytes and the key's home slot at once: most keys sit in
    // their home slot, so a hit waits for one miss here, not two in turn.
    shard.items.prefetch(key);
    auto it = shard.items.find(key);
    if (it == shard.items.end()) return false;
    Item& item = it->item;
    if (item.expires_us == 0 || now_us < item.expires_us) {
      if (!item.referenced) item.referenced = true;
      // Copied under the lock: an eviction may reuse the segment right after.
      Unpack(
          SegmentData(shard, item.segment) + item.offset + sizeof(RecordHeader),
          out);
      return true;
    }
    EraseLocked(shard, key);
    delta = RechargeLocked(shard);
  }
  Account(delta);
  return false;
}

uint64_t HotAnswers::Version(const Key128& key) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  return shard.version;
}

std::array<uint64_t, HotAnswers::kShards> HotAnswers::Versions() {
  std::array<uint64_t, kShards> versions;
  for (int i = 0; i < kShards; ++i) {
    LeanMutexLock lock(&shards_[i].mu);
    versions[i] = shards_[i].version;
  }
  return versions;
}

void HotAnswers::Put(const Key128& key, uint64_t version, int64_t expires_us,
                     const Answer& answer) {
  Shard& shard = ShardOf(key);
  int64_t delta;
  {
    LeanMutexLock lock(&shard.mu);
    if (shard.version != version) return;  // written or erased meanwhile
    InsertLocked(shard, key, expires_us, answer);
    delta = RechargeLocked(shard);
  }
  Account(delta);
}

bool HotAnswers::Fill(const Key128& key, uint64_t version, int64_t expires_us,
                      const Answer& answer) {
  Shard& shard = ShardOf(key);
  bool room = true;
  int64_t delta = 0;
  {
    LeanMutexLock lock(&shard.mu);
    // Refused when written since `version`; kept when already held (it was
    // stored or served since open, so it is as new and better placed).
    if (shard.version == version && !shard.items.contains(key)) {
      const size_t record = RecordSize(PackedSize(answer));
      if (record <= segment_bytes_) {
        room = MakeRoomLocked(shard, record, /*may_evict=*/false);
        if (room) WriteRecordLocked(shard, key, expires_us, answer);
      }
      delta = RechargeLocked(shard);
    }
  }
  Account(delta);
  return room;
}

void HotAnswers::Replace(const Key128& key, int64_t expires_us,
                         const Answer& answer) {
  Shard& shard = ShardOf(key);
  int64_t delta;
  {
    LeanMutexLock lock(&shard.mu);
    shard.version += 1;
    InsertLocked(shard, key, expires_us, answer);
    delta = RechargeLocked(shard);
  }
  Account(delta);
}

void HotAnswers::Erase(const Key128& key, bool drop_counts) {
  Shard& shard = ShardOf(key);
  int64_t delta;
  {
    LeanMutexLock lock(&shard.mu);
    shard.version += 1;
    HitCounts dropped;
    EraseLocked(shard, key, drop_counts ? &dropped : nullptr);
    delta = RechargeLocked(shard);
  }
  Account(delta);
}

bool HotAnswers::CountHit(const Key128& key, int64_t now_us,
                          int64_t saved_nusd) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  auto it = shard.items.find(key);
  if (it == shard.items.end()) return false;
  HitCounts& counts = it->item.counts;
  if (counts.hits == 0) {
    if (shard.counted.size() >= 2 * shard.items.size() + 1024) {
      RelistLocked(shard);
    }
    shard.counted.push_back(key);
  }
  counts.hits += 1;
  counts.last_hit_us = std::max(counts.last_hit_us, now_us);
  counts.saved_nusd += saved_nusd;
  return true;
}

void HotAnswers::TakeHitCounts(std::vector<std::pair<Key128, HitCounts>>* out) {
  constexpr size_t kChunk = 64;  // ~64 misses, some 15 us, under the lock
  std::vector<Key128> keys;
  for (Shard& shard : shards_) {
    {
      LeanMutexLock lock(&shard.mu);
      keys.swap(shard.counted);
    }
    // A key hit again after its counts were taken below is listed anew;
    // one hit again before is taken with them.
    for (size_t next = 0; next < keys.size(); next += kChunk) {
      const size_t end = std::min(keys.size(), next + kChunk);
      LeanMutexLock lock(&shard.mu);
      for (size_t i = next; i < end; ++i) {
        auto it = shard.items.find(keys[i]);
        if (it == shard.items.end() || it->item.counts.hits == 0) continue;
        out->emplace_back(keys[i], it->item.counts);
        it->item.counts = {};
      }
    }
    keys.clear();
  }
}

size_t HotAnswers::items() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    LeanMutexLock lock(&shard.mu);
    n += shard.items.size();
  }
  return n;
}

bool HotAnswers::InsertLocked(Shard& shard, const Key128& key,
                              int64_t expires_us, const Answer& answer) {
  // The old record, if any, stays in its segment as dead bytes until the
  // segment is evicted; its hit counts go with the key.
  HitCounts counts;
  EraseLocked(shard, key, &counts);
  const size_t record = RecordSize(PackedSize(answer));
  if (record > segment_bytes_) {
    SinkLocked(shard, key, counts);
    return false;
  }
  // A new key that could double the key map (small answers, many keys;
  // absl grows a table past 25/32 full once erasures used up its free
  // slots): first evict, which drops keys, until the doubled map would fit
  // beside the segments written or fewer keys are held.
  for (uint32_t turn = 0;
       turn < 2 * max_segments_ + 2 && !shard.log.empty() &&
       (shard.items.size() + 1) * 32 > shard.items.capacity() * 25 &&
       shard.segments.size() * segment_bytes_ + 2 * MapBytesLocked(shard) >
           shard_capacity_;
       ++turn) {
    EvictOldestLocked(shard, 0);
  }
  if (!MakeRoomLocked(shard, record, /*may_evict=*/true)) {
    SinkLocked(shard, key, counts);
    return false;
  }
  WriteRecordLocked(shard, key, expires_us, answer, counts);
  return true;
}

void HotAnswers::WriteRecordLocked(Shard& shard, const Key128& key,
                                   int64_t expires_us, const Answer& answer,
                                   const HitCounts& counts) {
  const size_t packed = PackedSize(answer);
  const size_t record = RecordSize(packed);
  const uint32_t head = shard.log.back();
  Segment& segment = shard.segments[head];
  char* p = SegmentData(shard, head) + segment.used;
  const RecordHeader header{key, static_cast<uint32_t>(packed), 0};
  std::memcpy(p, &header, sizeof(header));
  Pack(answer, p + sizeof(header));
  const Item item{head,
                  segment.used,
                  static_cast<uint32_t>(packed),
                  /*referenced=*/false,
                  expires_us,
                  counts};
  auto [it, added] = shard.items.insert(Slot{key, item});
  if (!added) it->item = item;
  segment.used += static_cast<uint32_t>(record);
}

void HotAnswers::EraseLocked(Shard& shard, const Key128& key, HitCounts* keep) {
  auto it = shard.items.find(key);
  if (it == shard.items.end()) return;
  if (keep != nullptr) {
    *keep = it->item.counts;
  } else {
    SinkLocked(shard, key, it->item.counts);
  }
  shard.items.erase(it);
}

void HotAnswers::RelistLocked(Shard& shard) {
  shard.counted.clear();
  for (const Slot& slot : shard.items) {
    if (slot.item.counts.hits > 0) shard.counted.push_back(slot.key);
  }
}

void HotAnswers::SinkLocked(Shard& shard, const Key128& key,
                            const HitCounts& counts) {
  (void)shard;  // for the annotation: called under the shard's lock
  if (counts.hits > 0 && counts_sink_) counts_sink_(key, counts);
}

bool HotAnswers::MakeRoomLocked(Shard& shard, size_t record, bool may_evict) {
  if (shard.region == nullptr) {
    // Reserved address space only: pages become resident when written.
    const size_t bytes = static_cast<size_t>(max_segments_) * segment_bytes_;
    const bool huge = huge_pages_;
    const size_t mapping_bytes = bytes + (huge ? kHugePage : 0);
    void* mapping = mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) return false;  // served from the store
    char* region = static_cast<char*>(mapping);
    if (huge) {
      const uintptr_t address = reinterpret_cast<uintptr_t>(region);
      region += (kHugePage - address % kHugePage) % kHugePage;
      // Advice only: where the kernel gives no huge pages, 4 KiB ones work.
      madvise(region, bytes, MADV_HUGEPAGE);
    }
    shard.mapping = mapping;
    shard.mapping_bytes = mapping_bytes;
    shard.region = region;
  }
  // Each eviction clears the flags of the answers it keeps, so within two
  // turns of the log some are dropped; the bound is a safeguard.
  for (uint32_t turn = 0; turn < 2 * max_segments_ + 2; ++turn) {
    if (!shard.log.empty() &&
        shard.segments[shard.log.back()].used + record <= segment_bytes_) {
      return true;
    }
    // One segment is kept back for eviction to copy survivors into, and
    // the key map's share of the capacity grows with the answers held
    // (small answers, many keys).
    const size_t map_segments =
        (MapBytesLocked(shard) + segment_bytes_ - 1) / segment_bytes_;
    const size_t all = shard_capacity_ / segment_bytes_;
    const size_t limit =
        std::min<size_t>(max_segments_, all - std::min(all, map_segments));
    if (shard.log.size() + 1 < std::max<size_t>(limit, 2)) {
      shard.log.push_back(TakeSegmentLocked(shard));
      continue;
    }
    if (!may_evict) return false;
    EvictOldestLocked(shard, record);
  }
  return false;
}

uint32_t HotAnswers::TakeSegmentLocked(Shard& shard) {
  if (!shard.spare.empty()) {
    const uint32_t segment = shard.spare.back();
    shard.spare.pop_back();
    return segment;
  }
  shard.segments.emplace_back();
  return static_cast<uint32_t>(shard.segments.size() - 1);
}

void HotAnswers::EvictOldestLocked(Shard& shard, size_t incoming) {
  // Survivors take at most half the new head, and leave room for the
  // record waiting to go in.
  const size_t keep = std::min(
      segment_bytes_ / 2, segment_bytes_ - std::min(segment_bytes_, incoming));
  const uint32_t victim = shard.log.front();
  shard.log.pop_front();
  const uint32_t head = TakeSegmentLocked(shard);
  shard.log.push_back(head);
  const char* from = SegmentData(shard, victim);
  char* to = SegmentData(shard, head);
  Segment& target = shard.segments[head];
  const uint32_t used = shard.segments[victim].used;
  for (uint32_t offset = 0; offset < used;) {
    RecordHeader header;
    std::memcpy(&header, from + offset, sizeof(header));
    const uint32_t record = static_cast<uint32_t>(RecordSize(header.size));
    auto it = shard.items.find(header.key);
    // Dead records (erased, or replaced by a newer one) are skipped.
    if (it != shard.items.end() && it->item.segment == victim &&
        it->item.offset == offset) {
      Item& item = it->item;
      // A second chance for answers read since written: copied to the
      // head, up to `keep`, so that an eviction always frees at least half
      // a segment (when most answers are read, as under uniform traffic,
      // copying them all would cost more than it keeps).
      if (item.referenced && target.used + record <= keep) {
        std::memcpy(to + target.used, from + offset, record);
        item.segment = head;
        item.offset = target.used;
        item.referenced = false;
        target.used += record;
      } else {
        SinkLocked(shard, header.key, item.counts);
        shard.items.erase(it);
      }
    }
    offset += record;
  }
  shard.segments[victim].used = 0;
  shard.spare.push_back(victim);
}

size_t HotAnswers::MapBytesLocked(const Shard& shard) const {
  return shard.items.capacity() * (sizeof(Slot) + 1);
}

int64_t HotAnswers::RechargeLocked(Shard& shard) {
  // On huge pages a first write makes a whole 2 MiB page resident.
  size_t segments = shard.segments.size() * segment_bytes_;
  if (huge_pages_) {
    segments = std::min((segments + kHugePage - 1) / kHugePage * kHugePage,
                        static_cast<size_t>(max_segments_) * segment_bytes_);
  }
  const size_t bytes = segments + MapBytesLocked(shard);
  const int64_t delta =
      static_cast<int64_t>(bytes) - static_cast<int64_t>(shard.bytes);
  shard.bytes = bytes;
  return delta;
}

void HotAnswers::Account(int64_t delta) {
  if (delta == 0) return;
  total_bytes_.fetch_add(static_cast<size_t>(delta), std::memory_order_relaxed);
  if (reservation_ == nullptr) return;
  // Chunks are 1 MiB, so most calls find the reservation already right.
  reservation_->Update(&total_bytes_);
}

}  // namespace promptcache::internal

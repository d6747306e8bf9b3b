#include "cache/hot_answers.h"

#include <cstring>
#include <utility>

namespace promptcache::internal {
namespace {

// The packed block: this header, then finish reason, tool calls and text.
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

size_t PackedSize(const Response& a) {
  return sizeof(PackedHeader) + a.finish_reason.size() +
         a.tool_calls_json.size() + a.text.size();
}

std::unique_ptr<char[]> Pack(const Response& a) {
  std::unique_ptr<char[]> block(new char[PackedSize(a)]);
  PackedHeader h{a.usage.input_tokens,
                 a.usage.output_tokens,
                 a.usage.cached_input_tokens,
                 a.usage.cache_write_input_tokens,
                 absl::ToInt64Microseconds(a.upstream_latency),
                 static_cast<uint32_t>(a.text.size()),
                 static_cast<uint32_t>(a.tool_calls_json.size()),
                 static_cast<uint32_t>(a.finish_reason.size()),
                 static_cast<uint8_t>(a.usage.estimated ? 1 : 0)};
  char* p = block.get();
  std::memcpy(p, &h, sizeof(h));
  p += sizeof(h);
  std::memcpy(p, a.finish_reason.data(), a.finish_reason.size());
  p += a.finish_reason.size();
  std::memcpy(p, a.tool_calls_json.data(), a.tool_calls_json.size());
  p += a.tool_calls_json.size();
  std::memcpy(p, a.text.data(), a.text.size());
  return block;
}

void Unpack(const char* block, Response* out) {
  PackedHeader h;
  std::memcpy(&h, block, sizeof(h));
  const char* p = block + sizeof(h);
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

}  // namespace

HotAnswers::HotAnswers(size_t capacity_bytes,
                       std::unique_ptr<BlockCacheReservation> charge_to)
    : shard_capacity_(capacity_bytes / kShards),
      reservation_(std::move(charge_to)) {}

size_t HotAnswers::ChargeOf(const Response& answer) {
  // Beyond the block: the allocator's header and rounding, the map slot
  // (key and Item, at a load factor down to 7/16 after growth, plus a
  // control byte) and the clock slot with its hole.
  constexpr size_t kItemOverhead =
      16 + 15 + (sizeof(Key128) + sizeof(Item) + 1) * 16 / 7 +
      sizeof(ClockSlot) + sizeof(uint32_t);
  return PackedSize(answer) + kItemOverhead;
}

bool HotAnswers::Get(const Key128& key, int64_t now_us, Response* out) {
  Shard& shard = ShardOf(key);
  size_t freed = 0;
  {
    LeanMutexLock lock(&shard.mu);
    auto it = shard.items.find(key);
    if (it == shard.items.end()) return false;
    Item& item = it->second;
    if (item.expires_us == 0 || now_us < item.expires_us) {
      if (!item.referenced) item.referenced = true;
      // Copied under the lock: an eviction may free the block right after.
      Unpack(item.packed.get(), out);
      return true;
    }
    freed = EraseLocked(shard, key);
  }
  Account(-static_cast<int64_t>(freed));
  return false;
}

uint64_t HotAnswers::Version(const Key128& key) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  return shard.version;
}

void HotAnswers::Put(const Key128& key, uint64_t version, int64_t expires_us,
                     const Response& answer) {
  const size_t bytes = ChargeOf(answer);
  if (bytes > shard_capacity_) return;
  std::unique_ptr<char[]> packed = Pack(answer);  // outside the lock
  Shard& shard = ShardOf(key);
  int64_t delta;
  {
    LeanMutexLock lock(&shard.mu);
    if (shard.version != version) return;  // written or erased meanwhile
    delta = InsertLocked(shard, key, expires_us, std::move(packed), bytes);
  }
  Account(delta);
}

void HotAnswers::Replace(const Key128& key, int64_t expires_us,
                         const Response& answer) {
  const size_t bytes = ChargeOf(answer);
  std::unique_ptr<char[]> packed =
      bytes <= shard_capacity_ ? Pack(answer) : nullptr;
  Shard& shard = ShardOf(key);
  int64_t delta;
  {
    LeanMutexLock lock(&shard.mu);
    shard.version += 1;
    delta = packed == nullptr ? -static_cast<int64_t>(EraseLocked(shard, key))
                              : InsertLocked(shard, key, expires_us,
                                             std::move(packed), bytes);
  }
  Account(delta);
}

void HotAnswers::Erase(const Key128& key) {
  Shard& shard = ShardOf(key);
  size_t freed;
  {
    LeanMutexLock lock(&shard.mu);
    shard.version += 1;
    freed = EraseLocked(shard, key);
  }
  if (freed > 0) Account(-static_cast<int64_t>(freed));
}

std::array<uint64_t, HotAnswers::kShards> HotAnswers::Versions() {
  std::array<uint64_t, kShards> versions;
  for (int i = 0; i < kShards; ++i) {
    LeanMutexLock lock(&shards_[i].mu);
    versions[i] = shards_[i].version;
  }
  return versions;
}

size_t HotAnswers::items() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    LeanMutexLock lock(&shard.mu);
    n += shard.items.size();
  }
  return n;
}

int64_t HotAnswers::InsertLocked(Shard& shard, const Key128& key,
                                 int64_t expires_us,
                                 std::unique_ptr<char[]> packed, size_t bytes) {
  size_t freed = EraseLocked(shard, key);
  while (shard.bytes + bytes > shard_capacity_ && !shard.items.empty()) {
    freed += EvictOneLocked(shard);
  }
  uint32_t slot;
  if (shard.holes.empty()) {
    slot = static_cast<uint32_t>(shard.clock.size());
    shard.clock.emplace_back();
  } else {
    slot = shard.holes.back();
    shard.holes.pop_back();
  }
  shard.clock[slot] = ClockSlot{key, true};
  shard.items[key] =
      Item{std::move(packed), expires_us, static_cast<uint32_t>(bytes), slot,
           /*referenced=*/false};
  shard.bytes += bytes;
  return static_cast<int64_t>(bytes) - static_cast<int64_t>(freed);
}

size_t HotAnswers::EraseLocked(Shard& shard, const Key128& key) {
  auto it = shard.items.find(key);
  if (it == shard.items.end()) return 0;
  const size_t bytes = it->second.bytes;
  shard.bytes -= bytes;
  shard.clock[it->second.slot].used = false;
  shard.holes.push_back(it->second.slot);
  shard.items.erase(it);
  return bytes;
}

size_t HotAnswers::EvictOneLocked(Shard& shard) {
  // One turn clears every flag, so the loop ends within two turns.
  for (;; ++shard.hand) {
    if (shard.hand >= shard.clock.size()) shard.hand = 0;
    const ClockSlot& slot = shard.clock[shard.hand];
    if (!slot.used) continue;
    const Key128 key = slot.key;
    Item& item = shard.items.find(key)->second;
    if (item.referenced) {
      item.referenced = false;
      continue;
    }
    const size_t freed = EraseLocked(shard, key);
    ++shard.hand;
    return freed;
  }
}

void HotAnswers::Account(int64_t delta) {
  if (delta == 0) return;
  const size_t total = total_bytes_.fetch_add(static_cast<size_t>(delta),
                                              std::memory_order_relaxed) +
                       static_cast<size_t>(delta);
  if (reservation_ == nullptr) return;
  // Chunks are 1 MiB, so most calls find the reservation already right.
  reservation_->Update(total);
}

}  // namespace promptcache::internal

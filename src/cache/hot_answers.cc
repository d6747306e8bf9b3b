#include "cache/hot_answers.h"

#include <utility>

namespace promptcache::internal {

HotAnswers::HotAnswers(size_t capacity_bytes)
    : shard_capacity_(capacity_bytes / kShards) {}

bool HotAnswers::Get(const Key128& key, int64_t now_us, Response* out) {
  std::shared_ptr<const Response> answer;
  {
    Shard& shard = ShardOf(key);
    LeanMutexLock lock(&shard.mu);
    auto it = shard.items.find(key);
    if (it == shard.items.end()) return false;
    Item& item = it->second;
    if (item.expires_us != 0 && now_us >= item.expires_us) {
      EraseLocked(shard, key);
      return false;
    }
    if (!item.referenced) item.referenced = true;
    answer = item.answer;
  }
  *out = *answer;  // copied outside the lock
  return true;
}

uint64_t HotAnswers::Version(const Key128& key) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  return shard.version;
}

void HotAnswers::Put(const Key128& key, uint64_t version, int64_t expires_us,
                     const Response& answer) {
  const size_t bytes = sizeof(Response) + answer.text.size() +
                       answer.tool_calls_json.size() +
                       answer.finish_reason.size() + 64;
  if (bytes > shard_capacity_) return;
  auto shared = std::make_shared<const Response>(answer);
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  if (shard.version != version) return;  // written or erased meanwhile
  EraseLocked(shard, key);
  while (shard.bytes + bytes > shard_capacity_ && !shard.items.empty()) {
    EvictOneLocked(shard);
  }
  size_t slot;
  if (shard.holes.empty()) {
    slot = shard.clock.size();
    shard.clock.emplace_back();
  } else {
    slot = shard.holes.back();
    shard.holes.pop_back();
  }
  shard.clock[slot] = ClockSlot{key, true};
  shard.items[key] =
      Item{std::move(shared), expires_us, bytes, slot, /*referenced=*/false};
  shard.bytes += bytes;
}

void HotAnswers::Erase(const Key128& key) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  shard.version += 1;
  EraseLocked(shard, key);
}

void HotAnswers::EraseLocked(Shard& shard, const Key128& key) {
  auto it = shard.items.find(key);
  if (it == shard.items.end()) return;
  shard.bytes -= it->second.bytes;
  shard.clock[it->second.slot].used = false;
  shard.holes.push_back(it->second.slot);
  shard.items.erase(it);
}

void HotAnswers::EvictOneLocked(Shard& shard) {
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
    EraseLocked(shard, key);
    ++shard.hand;
    return;
  }
}

}  // namespace promptcache::internal

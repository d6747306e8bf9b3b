#include "cache/hot_answers.h"

namespace promptcache::internal {

HotAnswers::HotAnswers(size_t capacity_bytes)
    : shard_capacity_(capacity_bytes / kShards) {}

bool HotAnswers::Get(const Key128& key, int64_t now_us, Response* out) {
  std::shared_ptr<const Response> answer;
  {
    Shard& shard = ShardOf(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.items.find(key);
    if (it == shard.items.end()) return false;
    if (it->second.expires_us != 0 && now_us >= it->second.expires_us) {
      EraseLocked(shard, key);
      return false;
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second.position);
    answer = it->second.answer;
  }
  *out = *answer;  // copied outside the lock
  return true;
}

uint64_t HotAnswers::Version(const Key128& key) {
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
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
  absl::MutexLock lock(&shard.mu);
  if (shard.version != version) return;  // written or erased meanwhile
  EraseLocked(shard, key);
  while (shard.bytes + bytes > shard_capacity_ && !shard.lru.empty()) {
    EraseLocked(shard, shard.lru.back());
  }
  shard.lru.push_front(key);
  shard.items[key] =
      Item{std::move(shared), expires_us, bytes, shard.lru.begin()};
  shard.bytes += bytes;
}

void HotAnswers::Erase(const Key128& key) {
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  shard.version += 1;
  EraseLocked(shard, key);
}

void HotAnswers::EraseLocked(Shard& shard, const Key128& key) {
  auto it = shard.items.find(key);
  if (it == shard.items.end()) return;
  shard.bytes -= it->second.bytes;
  shard.lru.erase(it->second.position);
  shard.items.erase(it);
}

}  // namespace promptcache::internal

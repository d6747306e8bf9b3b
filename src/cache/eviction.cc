#include "cache/eviction.h"

#include <algorithm>
#include <limits>

namespace promptcache::internal {

EvictionTracker::EvictionTracker(EvictionPolicy policy) : policy_(policy) {}

double EvictionTracker::Priority(const Slot& s) const {
  switch (policy_) {
    case EvictionPolicy::kGdsf:
      // Dollars saved per byte kept, per hit: frequency x cost / size.
      return inflation_ +
             static_cast<double>(s.hits + 1) *
                 static_cast<double>(std::max<int64_t>(1, s.cost_nusd)) /
                 static_cast<double>(std::max<int64_t>(1, s.bytes));
    case EvictionPolicy::kLru:
      return static_cast<double>(s.last_us);
    case EvictionPolicy::kLfu:
      // Frequency first; recency (< 0.02 here) breaks ties.
      return static_cast<double>(s.hits) +
             static_cast<double>(s.last_us) * 1e-17;
  }
  return 0;
}

void EvictionTracker::Upsert(const Key128& key, int64_t bytes,
                             int64_t cost_nusd, int64_t expires_us,
                             int64_t now_us, int64_t hits, int64_t last_us) {
  auto [it, inserted] =
      index_.try_emplace(key, static_cast<uint32_t>(slots_.size()));
  if (inserted) {
    slots_.push_back(Slot{key});
  } else {
    total_bytes_ -= slots_[it->second].bytes;
  }
  Slot& s = slots_[it->second];
  s.bytes = bytes;
  s.cost_nusd = cost_nusd;
  s.expires_us = expires_us;
  s.hits = std::max(s.hits, hits);
  s.last_us = std::max({s.last_us, last_us, now_us});
  s.priority = Priority(s);
  total_bytes_ += bytes;
}

void EvictionTracker::Touch(const Key128& key, int64_t new_hits,
                            int64_t last_us) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  Slot& s = slots_[it->second];
  s.hits += new_hits;
  s.last_us = std::max(s.last_us, last_us);
  s.priority = Priority(s);
}

void EvictionTracker::RemoveAt(size_t i) {
  total_bytes_ -= slots_[i].bytes;
  index_.erase(slots_[i].key);
  if (i + 1 != slots_.size()) {
    slots_[i] = slots_.back();
    index_[slots_[i].key] = static_cast<uint32_t>(i);
  }
  slots_.pop_back();
}

void EvictionTracker::Remove(const Key128& key) {
  auto it = index_.find(key);
  if (it != index_.end()) RemoveAt(it->second);
}

void EvictionTracker::Restore(const Slot& slot) {
  Upsert(slot.key, slot.bytes, slot.cost_nusd, slot.expires_us, 0, slot.hits,
         slot.last_us);
}

std::vector<EvictionTracker::Slot> EvictionTracker::TakeVictims(
    int64_t target_bytes, int64_t now_us) {
  std::vector<Slot> victims;
  // Expired entries are never served: they go first, whatever the policy.
  for (size_t i = 0; i < slots_.size() && total_bytes_ > target_bytes;) {
    if (slots_[i].expires_us != 0 && slots_[i].expires_us <= now_us) {
      victims.push_back(slots_[i]);
      RemoveAt(i);
    } else {
      ++i;
    }
  }
  while (total_bytes_ > target_bytes && !slots_.empty()) {
    std::uniform_int_distribution<size_t> pick(0, slots_.size() - 1);
    size_t best = pick(rng_);
    const int samples =
        std::min<int>(kSamples, static_cast<int>(slots_.size()));
    for (int k = 1; k < samples; ++k) {
      const size_t i = pick(rng_);
      if (slots_[i].priority < slots_[best].priority) best = i;
    }
    if (policy_ == EvictionPolicy::kGdsf) {
      inflation_ = std::max(inflation_, slots_[best].priority);
    }
    victims.push_back(slots_[best]);
    RemoveAt(best);
  }
  return victims;
}

}  // namespace promptcache::internal

// VectorIndex: per-scope indexes behind one interface (flat, HNSW, IVF),
// the insert queue and its background thread, removal, save and load.
// Kept in one file (~700 lines) because the queue, the scopes and the
// save/load share one set of locks whose order is declared in
// vector_index.h; the index kinds themselves live in their own files.
#include "semantic/vector_index.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/AuxIndexStructures.h"
#include "faiss/impl/DistanceComputer.h"
#include "faiss/impl/HNSW.h"
#include "faiss/index_io.h"
#include "faiss/utils/Heap.h"
#include "semantic/ivf_index.h"
#include "semantic/simd_flat.h"

namespace promptcache::internal {
namespace {

using Label = faiss::Index::idx_t;

// The last byte is the version: 3 since number signatures read "one", "once",
// "first" and "v3.11" in context (2026-12-08); files of another version are
// rebuilt.
constexpr char kSlotsMagic[8] = {'P', 'C', 'S', 'L', 'O', 'T', 'S', '3'};
// The slot file's kind field.
constexpr uint64_t kFlatKind = 0;
constexpr uint64_t kHnswKind = 1;
constexpr uint64_t kIvfKind = 2;

struct Slot {
  Key128 entry;
  Key128 context;
  uint64_t numbers = 0;
  bool live = true;
};

std::string ScopeFile(const std::string& dir, const Key128& scope,
                      const char* ext) {
  return absl::StrCat(dir, "/", scope.ToHex(), ext);
}

// HNSW searches for the smallest distance: negated inner products.
struct NegatedDot final : faiss::DistanceComputer {
  NegatedDot(const float* base, size_t d) : base(base), d(d) {}
  void set_query(const float* x) override { query = x; }
  float operator()(idx_t i) override { return -Dot(query, base + i * d, d); }
  float symmetric_dis(idx_t i, idx_t j) override {
    return -Dot(base + i * d, base + j * d, d);
  }
  const float* base;
  size_t d;
  const float* query = nullptr;
};

// One query against an HNSW index, on the calling thread. FAISS 1.7.3's
// IndexHNSW::search opens an OpenMP parallel region even for one query
// (waking a team of threads, each allocating an ntotal-byte visited table);
// this runs the same graph search directly with a per-thread visited table
// that is reused. `similarity` and `labels` receive `k` results, best first
// (label -1 past the end).
void SearchHnsw(const faiss::Index& index, const float* query, int64_t k,
                int ef_search, float* similarity, Label* labels) {
  faiss::SearchParametersHNSW params;
  params.efSearch = ef_search;
  const auto& hnsw = static_cast<const faiss::IndexHNSW&>(index);
  const auto* storage = dynamic_cast<const faiss::IndexFlat*>(hnsw.storage);
  if (storage == nullptr) {  // not our storage: FAISS's own path
    index.search(1, query, k, similarity, labels, &params);
    return;
  }
  thread_local faiss::VisitedTable visited(0);
  const size_t ntotal = static_cast<size_t>(hnsw.ntotal);
  if (visited.visited.size() < ntotal) {
    visited.visited.assign(ntotal, 0);
    visited.visno = 1;
  }
  NegatedDot distance(storage->get_xb(), static_cast<size_t>(index.d));
  distance.set_query(query);
  faiss::maxheap_heapify(k, similarity, labels);
  hnsw.hnsw.search(distance, static_cast<int>(k), labels, similarity, visited,
                   &params);  // advances `visited` itself
  faiss::maxheap_reorder(k, similarity, labels);
  for (int64_t i = 0; i < k; ++i) similarity[i] = -similarity[i];
}

}  // namespace

struct VectorIndex::Scope {
  mutable absl::Mutex mu;
  std::unique_ptr<faiss::Index> index ABSL_GUARDED_BY(mu);  // flat, HNSW
  std::unique_ptr<IvfIndex> ivf ABSL_GUARDED_BY(mu);        // IVF
  bool hnsw ABSL_GUARDED_BY(mu) = false;
  std::vector<Slot> slots ABSL_GUARDED_BY(mu);  // position == label
  int64_t dead ABSL_GUARDED_BY(mu) = 0;
};

VectorIndex::VectorIndex(VectorIndexOptions options) : options_(options) {}

void VectorIndex::KillSlot(Scope& scope, int64_t slot) {
  if (!scope.slots[slot].live) return;
  scope.slots[slot].live = false;
  scope.dead += 1;
  // IVF drops it from its list at once: dead vectors never crowd a search.
  if (scope.ivf != nullptr) scope.ivf->Remove(slot);
}

VectorIndex::~VectorIndex() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (drainer_.joinable()) drainer_.join();
}

VectorIndex::Scope* VectorIndex::FindScope(const Key128& scope) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = scopes_.find(scope);
  return it == scopes_.end() ? nullptr : it->second.get();
}

namespace {

std::unique_ptr<faiss::Index> NewIndex(const VectorIndexOptions& o, bool hnsw) {
  if (!hnsw) return std::make_unique<SimdFlatIP>(o.dimension);
  auto index = std::make_unique<faiss::IndexHNSWFlat>(
      o.dimension, o.hnsw_m, faiss::METRIC_INNER_PRODUCT);
  UseSimdStorage(index.get());
  index->hnsw.efConstruction = o.hnsw_ef_construction;
  index->hnsw.efSearch = o.hnsw_ef_search;
  return index;
}

IvfOptions IvfOptionsOf(const VectorIndexOptions& o) {
  IvfOptions ivf;
  ivf.dimension = o.dimension;
  ivf.max_list_size = o.ivf_max_list_size;
  ivf.probes = o.ivf_probes;
  return ivf;
}

}  // namespace

void VectorIndex::Add(const Key128& scope, const Key128& entry,
                      const Key128& context, uint64_t numbers,
                      const float* vector) {
  AddMany({NewVector{scope, entry, context, numbers, vector}});
}

void VectorIndex::AddMany(const std::vector<NewVector>& vectors) {
  absl::MutexLock add_lock(&add_mu_);
  {
    // A queued older vector of an entry must not land after this one.
    absl::MutexLock lock(&queue_mu_);
    for (const NewVector& v : vectors) latest_.erase(v.entry);
  }
  AddInChunks(vectors);
}

void VectorIndex::AddInChunks(const std::vector<NewVector>& vectors) {
  // Vectors added per hold of the index's locks: a search waits at most for
  // one chunk (~64 IVF inserts or 16 HNSW ones: a few ms).
  const size_t chunk = options_.kind == VectorIndexKind::kHnsw ? 16 : 64;
  // Each scope's vectors in order.
  absl::flat_hash_map<Key128, std::vector<Item>> by_scope;
  std::vector<Key128> scope_order;
  for (const NewVector& v : vectors) {
    auto [it, fresh] = by_scope.try_emplace(v.scope);
    if (fresh) scope_order.push_back(v.scope);
    it->second.push_back({v.entry, v.context, v.numbers, v.vector});
  }
  for (const Key128& scope : scope_order) {
    const std::vector<Item>& items = by_scope[scope];
    for (size_t i = 0; i < items.size(); i += chunk) {
      AddItems(scope, std::vector<Item>(
                          items.begin() + i,
                          items.begin() + std::min(items.size(), i + chunk)));
    }
  }
}

void VectorIndex::AddItems(const Key128& scope_key,
                           const std::vector<Item>& items) {
  absl::MutexLock lock(&mu_);
  for (const Item& item : items) {
    if (auto it = slots_.find(item.entry); it != slots_.end()) {
      // A replaced entry: its old slot dies.
      Scope& old = *scopes_[it->second.first];
      absl::MutexLock old_lock(&old.mu);
      KillSlot(old, it->second.second);
      slots_.erase(it);
    }
  }
  auto& owned = scopes_[scope_key];
  if (owned == nullptr) owned = std::make_unique<Scope>();
  Scope& scope = *owned;
  absl::MutexLock scope_lock(&scope.mu);
  if (options_.kind == VectorIndexKind::kIvf) {
    if (scope.ivf == nullptr) {
      scope.ivf = std::make_unique<IvfIndex>(IvfOptionsOf(options_));
    }
    for (const Item& item : items) scope.ivf->Add(item.vector);
  } else {
    if (scope.index == nullptr) scope.index = NewIndex(options_, false);
    std::vector<float> vectors;
    vectors.reserve(items.size() * options_.dimension);
    for (const Item& item : items) {
      vectors.insert(vectors.end(), item.vector,
                     item.vector + options_.dimension);
    }
    // FAISS opens an OpenMP team for every add call, even of one vector;
    // on a small machine its spinning workers cost more than one insert.
    const int threads = omp_get_max_threads();
    if (items.size() == 1) omp_set_num_threads(1);
    scope.index->add(static_cast<Label>(items.size()), vectors.data());
    omp_set_num_threads(threads);
  }
  for (const Item& item : items) {
    scope.slots.push_back({item.entry, item.context, item.numbers, true});
    slots_[item.entry] = {scope_key,
                          static_cast<int64_t>(scope.slots.size()) - 1};
  }

  const int64_t live = static_cast<int64_t>(scope.slots.size()) - scope.dead;
  const bool compact =
      scope.slots.size() > 64 &&
      scope.dead * 4 > static_cast<int64_t>(scope.slots.size());
  if (scope.ivf != nullptr) {
    if (!compact) return;
    // Renumbers in place: no vector is re-assigned.
    std::vector<int64_t> new_label(scope.slots.size(), -1);
    std::vector<Slot> slots;
    for (size_t i = 0; i < scope.slots.size(); ++i) {
      if (!scope.slots[i].live) continue;
      new_label[i] = static_cast<int64_t>(slots.size());
      slots_[scope.slots[i].entry] = {scope_key, new_label[i]};
      slots.push_back(scope.slots[i]);
    }
    scope.ivf->Compact(new_label);
    scope.slots = std::move(slots);
    scope.dead = 0;
    return;
  }
  const bool want_hnsw = options_.kind == VectorIndexKind::kHnsw &&
                         (scope.hnsw || live >= options_.hnsw_min_vectors);
  if (want_hnsw == scope.hnsw && !compact) return;
  // Rebuild with live vectors only, in the kind of index the size asks for.
  std::unique_ptr<faiss::Index> rebuilt = NewIndex(options_, want_hnsw);
  std::vector<float> vectors;
  std::vector<Slot> slots;
  vectors.reserve(live * options_.dimension);
  std::vector<float> one(options_.dimension);
  for (size_t i = 0; i < scope.slots.size(); ++i) {
    if (!scope.slots[i].live) continue;
    scope.index->reconstruct(static_cast<Label>(i), one.data());
    vectors.insert(vectors.end(), one.begin(), one.end());
    slots.push_back(scope.slots[i]);
  }
  rebuilt->add(static_cast<Label>(slots.size()), vectors.data());
  for (size_t i = 0; i < slots.size(); ++i) {
    slots_[slots[i].entry] = {scope_key, static_cast<int64_t>(i)};
  }
  scope.index = std::move(rebuilt);
  scope.slots = std::move(slots);
  scope.dead = 0;
  scope.hnsw = want_hnsw;
}

void VectorIndex::AddLater(const Key128& scope, const Key128& entry,
                           const Key128& context, uint64_t numbers,
                           const float* vector) {
  absl::MutexLock lock(&queue_mu_);
  if (!drainer_.joinable()) drainer_ = std::thread([this] { DrainQueue(); });
  const size_t limit =
      static_cast<size_t>(std::max(1, options_.max_queued_vectors));
  std::pair<VectorIndex*, size_t> arg(this, limit);
  queue_mu_.Await(absl::Condition(
      +[](std::pair<VectorIndex*, size_t>* arg) {
        VectorIndex* self = arg->first;
        return self->stopping_ || self->queue_.size() < arg->second;
      },
      &arg));
  Queued item;
  item.scope = scope;
  item.entry = entry;
  item.context = context;
  item.numbers = numbers;
  item.sequence = next_sequence_++;
  item.vector.assign(vector, vector + options_.dimension);
  latest_[entry] = item.sequence;
  queue_.push_back(std::move(item));
}

void VectorIndex::DrainQueue() {
  constexpr size_t kBatch = 1024;
  for (;;) {
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](VectorIndex* self) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (stopping_) return;
    }
    // add_mu_ from picking the batch to the last stale removal: no Add of
    // the same entry can come between (it would be killed by this older
    // vector, then removed as stale).
    absl::MutexLock add_lock(&add_mu_);
    // Only this thread pops, and push_back keeps references to a deque's
    // elements valid: the batch is read without the lock.
    std::vector<const Queued*> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      const size_t n = std::min(queue_.size(), kBatch);
      for (size_t i = 0; i < n; ++i) {
        const Queued& item = queue_[i];
        auto it = latest_.find(item.entry);
        // Stale items are popped below without being added.
        batch.push_back(it != latest_.end() && it->second == item.sequence
                            ? &item
                            : nullptr);
      }
    }
    std::vector<NewVector> fresh;
    for (const Queued* item : batch) {
      if (item == nullptr) continue;
      fresh.push_back({item->scope, item->entry, item->context, item->numbers,
                       item->vector.data()});
    }
    AddInChunks(fresh);
    // An entry removed or queued again while it was being added must not
    // stay in the index with this vector (no other adder ran meanwhile, so
    // the entry's slot is the one added here). Removed before the items
    // leave the queue, so that WaitForQueue sees the index settled.
    std::vector<Key128> stale;
    {
      absl::MutexLock lock(&queue_mu_);
      for (const Queued* item : batch) {
        if (item == nullptr) continue;
        auto it = latest_.find(item->entry);
        if (it != latest_.end() && it->second == item->sequence) {
          latest_.erase(it);
        } else {
          stale.push_back(item->entry);
        }
      }
    }
    for (const Key128& entry : stale) RemoveFromIndex(entry);
    absl::MutexLock lock(&queue_mu_);
    for (size_t i = 0; i < batch.size(); ++i) queue_.pop_front();
  }
}

void VectorIndex::WaitForQueue() {
  absl::MutexLock lock(&queue_mu_);
  std::pair<VectorIndex*, uint64_t> arg(this, next_sequence_);
  queue_mu_.Await(absl::Condition(
      +[](std::pair<VectorIndex*, uint64_t>* arg) {
        VectorIndex* self = arg->first;
        return self->stopping_ || self->queue_.empty() ||
               self->queue_.front().sequence >= arg->second;
      },
      &arg));
}

int64_t VectorIndex::queued_vectors() const {
  absl::MutexLock lock(&queue_mu_);
  return static_cast<int64_t>(queue_.size());
}

void VectorIndex::Remove(const Key128& entry) {
  {
    absl::MutexLock lock(&queue_mu_);
    latest_.erase(entry);
  }
  RemoveFromIndex(entry);
}

void VectorIndex::RemoveFromIndex(const Key128& entry) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(entry);
  if (it == slots_.end()) return;
  Scope& scope = *scopes_[it->second.first];
  absl::MutexLock scope_lock(&scope.mu);
  KillSlot(scope, it->second.second);
  slots_.erase(it);
}

std::vector<VectorCandidate> VectorIndex::Search(const Key128& scope_key,
                                                 const float* query,
                                                 int k) const {
  std::vector<VectorCandidate> out;
  if (k <= 0) return out;
  // Queued vectors first: one that moves into the index meanwhile is then
  // found there (it leaves the queue only after it is in).
  std::vector<VectorCandidate> queued;
  {
    absl::ReaderMutexLock lock(&queue_mu_);
    for (const Queued& item : queue_) {
      if (item.scope != scope_key) continue;
      auto it = latest_.find(item.entry);
      if (it == latest_.end() || it->second != item.sequence) continue;
      queued.push_back({item.entry, item.context, item.numbers,
                        Dot(query, item.vector.data(),
                            static_cast<size_t>(options_.dimension))});
    }
  }
  Scope* scope = FindScope(scope_key);
  if (scope != nullptr) {
    absl::ReaderMutexLock lock(&scope->mu);
    const int64_t total = static_cast<int64_t>(scope->slots.size());
    // Ask for extra results to make up for dead slots and for entries
    // whose newer vector is queued.
    const int64_t want =
        std::min<int64_t>(total, k + std::min<int64_t>(scope->dead, 4 * k) +
                                     static_cast<int64_t>(queued.size()));
    std::vector<float> similarity(want);
    std::vector<Label> labels(want);
    if (want == 0) {
      // nothing stored yet
    } else if (scope->ivf != nullptr) {
      std::vector<std::pair<float, int64_t>> found;
      scope->ivf->Search(query, static_cast<int>(want), &found);
      for (size_t i = 0; i < static_cast<size_t>(want); ++i) {
        similarity[i] = i < found.size() ? found[i].first : -1e30f;
        labels[i] = i < found.size() ? found[i].second : -1;
      }
    } else if (scope->hnsw) {
      SearchHnsw(*scope->index, query, want,
                 std::max<int>(options_.hnsw_ef_search, static_cast<int>(want)),
                 similarity.data(), labels.data());
    } else {
      scope->index->search(1, query, want, similarity.data(), labels.data());
    }
    for (int64_t i = 0; i < want; ++i) {
      if (labels[i] < 0 || labels[i] >= total) continue;
      const Slot& slot = scope->slots[labels[i]];
      if (!slot.live) continue;
      out.push_back({slot.entry, slot.context, slot.numbers, similarity[i]});
    }
  }
  if (!queued.empty()) {
    absl::flat_hash_set<Key128> newer;
    for (const VectorCandidate& c : queued) newer.insert(c.entry);
    for (const VectorCandidate& c : out) {
      if (!newer.contains(c.entry)) queued.push_back(c);
    }
    std::stable_sort(queued.begin(), queued.end(),
                     [](const VectorCandidate& a, const VectorCandidate& b) {
                       return a.similarity > b.similarity;
                     });
    out = std::move(queued);
  }
  if (static_cast<int>(out.size()) > k) out.resize(k);
  return out;
}

absl::Status VectorIndex::SaveScope(const Key128& scope_key,
                                    const std::string& dir,
                                    uint64_t generation) const {
  {
    // A file stamped with the generation must hold every vector of it.
    absl::ReaderMutexLock lock(&queue_mu_);
    for (const Queued& item : queue_) {
      if (item.scope == scope_key) {
        return absl::FailedPreconditionError(
            "vectors of the scope are still queued");
      }
    }
  }
  Scope* scope = FindScope(scope_key);
  if (scope == nullptr) return absl::NotFoundError("no such scope");
  absl::ReaderMutexLock lock(&scope->mu);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const bool ivf = scope->ivf != nullptr;
  const std::string index_path =
      ScopeFile(dir, scope_key, ivf ? ".ivf" : ".faiss");
  const std::string slots_path = ScopeFile(dir, scope_key, ".slots");
  if (ivf) {
    std::ofstream out(index_path + ".tmp", std::ios::binary | std::ios::trunc);
    if (!scope->ivf->Save(out) || !out.flush()) {
      return absl::InternalError(
          absl::StrCat("writing index file ", index_path));
    }
  } else {
    try {
      faiss::write_index(scope->index.get(), (index_path + ".tmp").c_str());
    } catch (const std::exception& e) {
      return absl::InternalError(
          absl::StrCat("writing index file ", index_path, ": ", e.what()));
    }
  }
  {
    std::ofstream out(slots_path + ".tmp", std::ios::binary | std::ios::trunc);
    const uint64_t kind = ivf ? kIvfKind : scope->hnsw ? kHnswKind : kFlatKind;
    const uint64_t header[4] = {generation,
                                static_cast<uint64_t>(options_.dimension), kind,
                                static_cast<uint64_t>(scope->slots.size())};
    out.write(kSlotsMagic, sizeof(kSlotsMagic));
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
    for (const Slot& s : scope->slots) {
      const uint64_t words[5] = {s.entry.hi, s.entry.lo, s.context.hi,
                                 s.context.lo, s.numbers};
      out.write(reinterpret_cast<const char*>(words), sizeof(words));
      out.put(s.live ? 1 : 0);
    }
    if (!out) {
      return absl::InternalError(
          absl::StrCat("writing slot file ", slots_path));
    }
  }
  // The slots file is renamed last: it carries the generation stamp, so a
  // crash in between leaves a stale or missing stamp, never a wrong one.
  std::filesystem::rename(index_path + ".tmp", index_path, ec);
  if (!ec) std::filesystem::rename(slots_path + ".tmp", slots_path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("renaming index files in ", dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status VectorIndex::LoadScope(const Key128& scope_key,
                                    const std::string& dir,
                                    uint64_t generation) {
  const std::string slots_path = ScopeFile(dir, scope_key, ".slots");
  std::ifstream in(slots_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("no ", slots_path));
  char magic[sizeof(kSlotsMagic)];
  uint64_t header[4];
  in.read(magic, sizeof(magic));
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  if (in && std::equal(magic, magic + sizeof(magic) - 1, kSlotsMagic) &&
      magic[sizeof(magic) - 1] != kSlotsMagic[sizeof(magic) - 1]) {
    return absl::FailedPreconditionError(
        absl::StrCat(slots_path, " was written by another version"));
  }
  if (!in || !std::equal(magic, magic + sizeof(magic), kSlotsMagic)) {
    return absl::DataLossError(absl::StrCat(slots_path, " is not a slot file"));
  }
  if (header[0] != generation) {
    return absl::FailedPreconditionError(absl::StrCat(slots_path, " is stale"));
  }
  if (header[1] != static_cast<uint64_t>(options_.dimension) ||
      header[3] > (uint64_t{1} << 32) || header[2] > kIvfKind) {
    return absl::DataLossError(absl::StrCat(slots_path, " has a bad header"));
  }
  const uint64_t kind = header[2];
  // Files of another kind are rebuilt in the configured one.
  const bool wanted = options_.kind == VectorIndexKind::kIvf ? kind == kIvfKind
                      : options_.kind == VectorIndexKind::kFlat
                          ? kind == kFlatKind
                          : kind != kIvfKind;
  if (!wanted) {
    return absl::FailedPreconditionError(
        absl::StrCat(slots_path, " holds another kind of index"));
  }
  // The file's size must match its count before anything is allocated.
  constexpr uint64_t kSlotRecordBytes = 5 * sizeof(uint64_t) + 1;
  std::error_code size_error;
  const uint64_t file_bytes =
      std::filesystem::file_size(slots_path, size_error);
  if (size_error || file_bytes != sizeof(kSlotsMagic) + sizeof(header) +
                                      header[3] * kSlotRecordBytes) {
    return absl::DataLossError(
        absl::StrCat(slots_path, " does not match its slot count"));
  }
  std::vector<Slot> slots(header[3]);
  int64_t dead = 0;
  for (Slot& s : slots) {
    uint64_t words[5];
    in.read(reinterpret_cast<char*>(words), sizeof(words));
    const int live = in.get();
    s = {{words[0], words[1]}, {words[2], words[3]}, words[4], live == 1};
    dead += !s.live;
  }
  if (!in || in.peek() != std::char_traits<char>::eof()) {
    return absl::DataLossError(absl::StrCat(slots_path, " is truncated"));
  }
  std::unique_ptr<faiss::Index> index;
  std::unique_ptr<IvfIndex> ivf;
  if (kind == kIvfKind) {
    const std::string index_path = ScopeFile(dir, scope_key, ".ivf");
    std::ifstream index_in(index_path, std::ios::binary);
    absl::StatusOr<std::unique_ptr<IvfIndex>> loaded = IvfIndex::Load(
        index_in, IvfOptionsOf(options_), static_cast<int64_t>(slots.size()));
    if (!loaded.ok()) {
      return absl::DataLossError(
          absl::StrCat(index_path, ": ", loaded.status().message()));
    }
    ivf = *std::move(loaded);
    for (size_t i = 0; i < slots.size(); ++i) {
      if (ivf->Contains(static_cast<int64_t>(i)) != slots[i].live) {
        return absl::DataLossError(
            absl::StrCat(index_path, " does not match its slot file"));
      }
    }
  } else {
    const std::string index_path = ScopeFile(dir, scope_key, ".faiss");
    try {
      index.reset(faiss::read_index(index_path.c_str()));
    } catch (const std::exception& e) {
      return absl::DataLossError(
          absl::StrCat("reading index file ", index_path, ": ", e.what()));
    }
    const bool hnsw = kind == kHnswKind;
    const bool right_kind =
        hnsw ? dynamic_cast<faiss::IndexHNSWFlat*>(index.get()) != nullptr
             : dynamic_cast<faiss::IndexFlatIP*>(index.get()) != nullptr;
    if (!right_kind || index->d != options_.dimension ||
        index->ntotal != static_cast<Label>(slots.size())) {
      return absl::DataLossError(
          absl::StrCat(index_path, " does not match its slot file"));
    }
    if (hnsw) {
      auto* h = static_cast<faiss::IndexHNSWFlat*>(index.get());
      h->hnsw.efSearch = options_.hnsw_ef_search;
      UseSimdStorage(h);
    } else {
      // Same vectors, faster scan.
      auto simd = std::make_unique<SimdFlatIP>(options_.dimension);
      simd->codes = static_cast<faiss::IndexFlatIP*>(index.get())->codes;
      simd->ntotal = index->ntotal;
      index = std::move(simd);
    }
  }
  absl::MutexLock add_lock(&add_mu_);
  absl::MutexLock lock(&mu_);
  auto& owned = scopes_[scope_key];
  if (owned == nullptr) owned = std::make_unique<Scope>();
  absl::MutexLock scope_lock(&owned->mu);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].live) {
      slots_[slots[i].entry] = {scope_key, static_cast<int64_t>(i)};
    }
  }
  owned->index = std::move(index);
  owned->ivf = std::move(ivf);
  owned->slots = std::move(slots);
  owned->dead = dead;
  owned->hnsw = kind == kHnswKind;
  return absl::OkStatus();
}

std::vector<Key128> VectorIndex::Scopes() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<Key128> out;
  for (const auto& [key, scope] : scopes_) out.push_back(key);
  return out;
}

int64_t VectorIndex::live_vectors() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(slots_.size());
}

int64_t VectorIndex::memory_bytes() const {
  int64_t bytes = 0;
  {
    absl::ReaderMutexLock lock(&queue_mu_);
    bytes += static_cast<int64_t>(queue_.size()) *
             static_cast<int64_t>(sizeof(Queued) +
                                  options_.dimension * sizeof(float));
  }
  absl::ReaderMutexLock lock(&mu_);
  bytes += static_cast<int64_t>(slots_.size()) * 48;
  for (const auto& [key, scope] : scopes_) {
    absl::ReaderMutexLock scope_lock(&scope->mu);
    bytes += static_cast<int64_t>(scope->slots.size() * sizeof(Slot));
    if (scope->ivf != nullptr) bytes += scope->ivf->memory_bytes();
    if (scope->index == nullptr) continue;
    bytes += scope->index->ntotal * options_.dimension * sizeof(float);
    if (scope->hnsw) {
      const auto* h =
          static_cast<const faiss::IndexHNSWFlat*>(scope->index.get());
      bytes += static_cast<int64_t>(h->hnsw.neighbors.size() *
                                    sizeof(faiss::HNSW::storage_idx_t)) +
               static_cast<int64_t>(h->hnsw.offsets.size() * sizeof(size_t)) +
               static_cast<int64_t>(h->hnsw.levels.size() * sizeof(int));
    }
  }
  return bytes;
}

bool VectorIndex::IsHnsw(const Key128& scope_key) const {
  Scope* scope = FindScope(scope_key);
  if (scope == nullptr) return false;
  absl::ReaderMutexLock lock(&scope->mu);
  return scope->hnsw;
}

int VectorIndex::IvfLists(const Key128& scope_key) const {
  Scope* scope = FindScope(scope_key);
  if (scope == nullptr) return 0;
  absl::ReaderMutexLock lock(&scope->mu);
  return scope->ivf == nullptr ? 0 : scope->ivf->lists();
}

}  // namespace promptcache::internal

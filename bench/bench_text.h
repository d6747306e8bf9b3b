// Deterministic, realistic-looking traffic shared by the benchmarks:
// support-chat words, sentences and system prompts.
#ifndef PROMPTCACHE_BENCH_BENCH_TEXT_H_
#define PROMPTCACHE_BENCH_BENCH_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace promptcache::bench {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline constexpr std::string_view kWords[] = {
    "the",          "customer", "order",         "shipping",
    "refund",       "account",  "password",      "invoice",
    "delivery",     "address",  "please",        "help",
    "with",         "my",       "recent",        "purchase",
    "product",      "warranty", "return",        "policy",
    "how",          "long",     "does",          "it",
    "take",         "to",       "process",       "a",
    "request",      "for",      "international", "express",
    "tracking",     "number",   "missing",       "package",
    "damaged",      "item",     "replacement",   "store",
    "credit",       "card",     "payment",       "failed",
    "subscription", "cancel",   "upgrade",       "plan",
    "discount",     "code",     "expired",       "support",
    "ticket",       "status",   "update",        "email",
    "notification", "settings", "language",      "region",
    "tax",          "receipt",  "business",      "hours",
    "weekend",      "holiday",  "schedule",      "available",
    "stock",        "size",     "colour",        "exchange",
    "gift",         "wrap",     "message",       "thank",
    "you",          "could",    "would",         "should",
};
inline constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

// Appends random words (seeded by `seed`) until `out` is >= `min_size` long.
inline void AppendWords(std::string* out, uint64_t seed, size_t min_size) {
  uint64_t state = seed;
  bool sentence_start = out->empty() || out->back() == ' ';
  int words_in_sentence = 0;
  while (out->size() < min_size) {
    std::string_view w = kWords[SplitMix64(state) % kNumWords];
    if (!out->empty() && out->back() != ' ') out->push_back(' ');
    if (sentence_start) {
      out->push_back(static_cast<char>(w[0] - 'a' + 'A'));
      out->append(w.substr(1));
      sentence_start = false;
    } else {
      out->append(w);
    }
    if (++words_in_sentence >= 8 + static_cast<int>(SplitMix64(state) % 8)) {
      out->push_back('.');
      sentence_start = true;
      words_in_sentence = 0;
    }
  }
}

inline constexpr std::string_view kSystemPrompts[] = {
    "You are a helpful customer support assistant for an online store. "
    "Answer concisely, cite the relevant policy, and never invent order "
    "details that the customer did not give you.",
    "You are a support agent for a subscription service. Be polite and "
    "brief. If the question is about billing, explain the next billing "
    "date and how to change the plan.",
    "You are an assistant that answers shipping questions. Give delivery "
    "estimates in business days and mention tracking when relevant.",
    "You are a returns specialist. Explain the return window, the refund "
    "method and any fees. Ask for the order number if it is missing.",
};

}  // namespace promptcache::bench

#endif  // PROMPTCACHE_BENCH_BENCH_TEXT_H_

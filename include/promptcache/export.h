// PROMPTCACHE_EXPORT marks what the libraries export. They are compiled
// with hidden visibility, so in a shared build (-DBUILD_SHARED_LIBS=ON) only
// the marked classes and functions of include/promptcache/ can be linked
// against; everything under src/ stays internal. In a static build the mark
// changes nothing.
#ifndef PROMPTCACHE_EXPORT_H_
#define PROMPTCACHE_EXPORT_H_

// PROMPTCACHE_HIDDEN keeps an exported class's nested implementation
// (`Cache::Impl`) hidden, which it would otherwise not be.
#if defined(__GNUC__) || defined(__clang__)
#define PROMPTCACHE_EXPORT __attribute__((visibility("default")))
#define PROMPTCACHE_HIDDEN __attribute__((visibility("hidden")))
#else
#define PROMPTCACHE_EXPORT
#define PROMPTCACHE_HIDDEN
#endif

#endif  // PROMPTCACHE_EXPORT_H_

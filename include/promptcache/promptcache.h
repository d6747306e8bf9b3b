// Umbrella header. HttpEmbedder and HttpModelClient live in the
// promptcache::http target (libcurl), Model2VecEmbedder in
// promptcache::model2vec; everything else in promptcache::promptcache.
#ifndef PROMPTCACHE_PROMPTCACHE_H_
#define PROMPTCACHE_PROMPTCACHE_H_

#include "promptcache/builtin_embedder.h"
#include "promptcache/cache.h"
#include "promptcache/cached_client.h"
#include "promptcache/embedder.h"
#include "promptcache/http_embedder.h"
#include "promptcache/keys.h"
#include "promptcache/ledger.h"
#include "promptcache/model2vec_embedder.h"
#include "promptcache/model_client.h"
#include "promptcache/options.h"
#include "promptcache/price_book.h"
#include "promptcache/request.h"
#include "promptcache/response.h"
#include "promptcache/semantic_options.h"

#endif  // PROMPTCACHE_PROMPTCACHE_H_

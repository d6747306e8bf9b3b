#include "promptcache/model2vec_embedder.h"

#include "gtest/gtest.h"

TEST(Model2VecTest, Placeholder) {}

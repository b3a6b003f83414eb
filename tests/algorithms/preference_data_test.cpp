// The pair shards of algorithms/preference_data.h: each rank's share of a micro-batch, in order,
// and the errors of a batch the ranks cannot share evenly.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "algorithms/preference_data.h"
#include "tests/error_of.h"

namespace rlaif {
namespace {

using test::error_of;

TEST(PreferenceShards, PartitionEachBatchInOrderAndRefuseAnUnevenBatch) {
  const std::vector<int64_t> batch = {7, 3, 9, 1, 4, 0};
  EXPECT_EQ(rank_shard(batch, 0, 1), batch);
  EXPECT_EQ(rank_shard(batch, 0, 2), (std::vector<int64_t>{7, 3, 9}));
  EXPECT_EQ(rank_shard(batch, 1, 2), (std::vector<int64_t>{1, 4, 0}));
  EXPECT_EQ(rank_shard(batch, 2, 3), (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(error_of([] { check_rank_shard(6, 0, 4, "rm"); }),
            "rm: --batch 6 is not divisible by the 4 data-parallel ranks: each rank trains on an "
            "equal share of every batch, so use a --batch that is a multiple of 4");
  EXPECT_NE(error_of([&] { rank_shard(batch, 0, 4); }).find("--batch 6"), std::string::npos);
  EXPECT_NE(error_of([] { check_rank_shard(4, 2, 2, "dpo"); }).find("dpo: rank 2 of 2"),
            std::string::npos);
}

}  // namespace
}  // namespace rlaif

#include "algorithms/server_reward.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/error.h"

namespace rlaif {

std::string columns_object_json(const PromptRecord& record) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  for (const auto& [name, json] : record.columns) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

ServerReward::ServerReward(RewardServerOptions options, PromptColumns columns)
    : client_(std::move(options)), columns_(std::move(columns)) {}

std::vector<double> ServerReward::score(const std::vector<std::string>& prompts,
                                        const std::vector<std::string>& completions) {
  RLAIF_CHECK(prompts.size() == completions.size(), "server reward: ", prompts.size(),
              " prompts but ", completions.size(), " completions");
  ++calls_;
  std::vector<RewardServerItem> items;
  items.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    items.push_back({prompts[i], completions[i], columns_object_json(columns_.record(prompts[i]))});
  }
  return client_.score(items, "scoring call " + std::to_string(calls_));
}

}  // namespace rlaif

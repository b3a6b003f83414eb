#include "algorithms/ppo_data_parallel.h"

#include <algorithm>
#include <cstring>

#include "runtime/communicator.h"
#include "runtime/error.h"

namespace rlaif {

void check_ppo_ranks(const PpoOptions& options, int64_t grad_accum, int ranks) {
  RLAIF_CHECK(ranks > 0, "ppo: ", ranks, " ranks");
  RLAIF_CHECK(grad_accum > 0, "ppo: --grad-accum must be positive");
  const int64_t S = options.sequences_per_step();
  const int64_t micro = options.mini_batches > 0 ? S / options.mini_batches / grad_accum : 0;
  RLAIF_CHECK(micro > 0 && micro % ranks == 0, "ppo: --batch ", options.batch_prompts, " × ",
              options.samples_per_prompt, " samples per prompt / (", options.mini_batches,
              " mini-batches × --grad-accum ", grad_accum, ") = ", micro,
              " sequences per micro-batch, which is not divisible by the ", ranks,
              " data-parallel ranks: each rank trains on an equal share of every micro-batch, so "
              "use a --batch that makes it a multiple of ",
              ranks);
}

SequenceRange rank_sequences(int64_t sequences, int rank, int ranks) {
  RLAIF_CHECK(ranks > 0 && rank >= 0 && rank < ranks, "ppo: rank ", rank, " of ", ranks);
  RLAIF_CHECK(sequences % ranks == 0, "ppo: the ", sequences,
              " sequences of a step do not split evenly over ", ranks, " ranks");
  const int64_t share = sequences / ranks;
  return {rank * share, share};
}

namespace {

class Writer {
 public:
  template <typename T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  template <typename T>
  void put_all(const std::vector<T>& v) {
    put(static_cast<int64_t>(v.size()));
    if (v.empty()) return;
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size() * sizeof(T));
  }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <typename T>
  std::vector<T> get_all() {
    const auto n = get<int64_t>();
    RLAIF_CHECK(n >= 0, "unpack_samples: a negative length (", n, ")");
    need(static_cast<size_t>(n) * sizeof(T));
    std::vector<T> v(static_cast<size_t>(n));
    // (An empty vector's data() may be null, which memcpy must not get even for 0 bytes.)
    if (!v.empty()) std::memcpy(v.data(), data_ + at_, v.size() * sizeof(T));
    at_ += v.size() * sizeof(T);
    return v;
  }
  size_t read() const { return at_; }

 private:
  void need(size_t n) const {
    RLAIF_CHECK(n <= size_ - at_, "unpack_samples: the data end after ", at_, " of ", size_,
                " bytes, mid-sample");
  }
  const uint8_t* data_;
  size_t size_, at_ = 0;
};

constexpr int64_t kSampleMagic = 0x53414d50;  // "SAMP": catches a misaligned read early

}  // namespace

std::vector<uint8_t> pack_samples(const std::vector<Sample>& samples, const SequenceRange& range) {
  RLAIF_CHECK(range.first >= 0 && range.count >= 0 &&
                  range.first + range.count <= static_cast<int64_t>(samples.size()),
              "pack_samples: samples [", range.first, ", ", range.first + range.count, ") of ",
              samples.size());
  Writer w;
  for (int64_t i = range.first; i < range.first + range.count; ++i) {
    const Sample& s = samples[static_cast<size_t>(i)];
    w.put(kSampleMagic);
    w.put(static_cast<uint8_t>(s.eos ? 1 : 0));
    w.put(s.score);
    w.put(s.entropy);
    w.put_all(s.tokens.completion);
    w.put_all(s.logprobs);
    w.put_all(s.ref_logprobs);
    w.put_all(s.values);
  }
  return w.take();
}

size_t unpack_samples(const uint8_t* data, size_t size, std::vector<Sample>& samples,
                      const SequenceRange& range, const Tokenizer* tokenizer) {
  RLAIF_CHECK(range.first >= 0 && range.count >= 0 &&
                  range.first + range.count <= static_cast<int64_t>(samples.size()),
              "unpack_samples: samples [", range.first, ", ", range.first + range.count, ") of ",
              samples.size());
  Reader r(data, size);
  for (int64_t i = range.first; i < range.first + range.count; ++i) {
    Sample& s = samples[static_cast<size_t>(i)];
    RLAIF_CHECK(r.get<int64_t>() == kSampleMagic, "unpack_samples: sample ", i,
                " does not begin where expected");
    s.eos = r.get<uint8_t>() != 0;
    s.score = r.get<double>();
    s.entropy = r.get<double>();
    s.tokens.completion = r.get_all<int32_t>();
    s.logprobs = r.get_all<float>();
    s.ref_logprobs = r.get_all<float>();
    s.values = r.get_all<float>();
    if (tokenizer != nullptr) s.completion = tokenizer->decode(s.tokens.completion);
  }
  return r.read();
}

void gather_rollout(Rollout& rollout, Communicator& comm, const Tokenizer& tokenizer) {
  const int ranks = comm.size();
  if (ranks == 1) return;
  const auto S = static_cast<int64_t>(rollout.samples.size());
  const std::vector<uint8_t> mine =
      pack_samples(rollout.samples, rank_sequences(S, comm.rank(), ranks));
  // Ranks pack different byte counts; all_gather moves equal chunks, so each is padded to the
  // largest.
  Tensor sizes = Tensor::zeros({ranks}, DType::i64);
  comm.all_gather(Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(mine.size())}, {1}),
                  sizes);
  const std::vector<int64_t> size_of = sizes.to_vector<int64_t>();
  const int64_t chunk = std::max<int64_t>(1, *std::max_element(size_of.begin(), size_of.end()));
  std::vector<uint8_t> padded(static_cast<size_t>(chunk), 0);
  std::copy(mine.begin(), mine.end(), padded.begin());
  Tensor all = Tensor::zeros({ranks * chunk}, DType::u8);
  comm.all_gather(Tensor::from_vector(padded, {chunk}), all);
  const uint8_t* bytes = all.data<uint8_t>();
  for (int r = 0; r < ranks; ++r) {
    if (r == comm.rank()) continue;
    const size_t n = static_cast<size_t>(size_of[static_cast<size_t>(r)]);
    const size_t read = unpack_samples(bytes + r * chunk, n, rollout.samples,
                                       rank_sequences(S, r, ranks), &tokenizer);
    RLAIF_CHECK(read == n, "gather_rollout: rank ", r, " sent ", n, " bytes, ", read,
                " of them samples");
  }
}

std::string broadcast_scores(Rollout& rollout, Communicator& comm, const std::string& lead_stop) {
  if (comm.size() == 1) return lead_stop;
  // First the length of rank 0's stop message (0: scores follow), then the message or the scores.
  Tensor length =
      Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(lead_stop.size())}, {1});
  comm.broadcast(length, 0);
  const int64_t stop_bytes = length.to_vector<int64_t>()[0];
  if (stop_bytes > 0) {
    std::vector<uint8_t> text(static_cast<size_t>(stop_bytes));
    if (comm.rank() == 0) std::memcpy(text.data(), lead_stop.data(), text.size());
    Tensor t = Tensor::from_vector(text, {stop_bytes});
    comm.broadcast(t, 0);
    text = t.to_vector<uint8_t>();
    return std::string(text.begin(), text.end());
  }
  std::vector<int64_t> bits(rollout.samples.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    std::memcpy(&bits[i], &rollout.samples[i].score, sizeof(double));
  }
  Tensor t = Tensor::from_vector(bits, {static_cast<int64_t>(bits.size())});
  comm.broadcast(t, 0);
  bits = t.to_vector<int64_t>();
  for (size_t i = 0; i < bits.size(); ++i) {
    std::memcpy(&rollout.samples[i].score, &bits[i], sizeof(double));
  }
  return {};
}

MicroBatchShare micro_batch_share(const std::vector<int64_t>& micro,
                                  const std::vector<Sample>& samples, int rank, int ranks) {
  const auto m = static_cast<int64_t>(micro.size());
  RLAIF_CHECK(ranks > 0 && rank >= 0 && rank < ranks && m % ranks == 0, "ppo: a micro-batch of ", m,
              " sequences does not split evenly over ", ranks, " ranks");
  const int64_t share = m / ranks;
  MicroBatchShare out;
  out.samples.assign(micro.begin() + rank * share, micro.begin() + (rank + 1) * share);
  if (ranks == 1) return out;  // weight exactly 1
  int64_t all = 0, own = 0;
  for (int64_t j = 0; j < m; ++j) {
    const auto n = static_cast<int64_t>(
        samples.at(static_cast<size_t>(micro[static_cast<size_t>(j)])).tokens.completion.size());
    all += n;
    if (j >= rank * share && j < (rank + 1) * share) own += n;
  }
  RLAIF_CHECK(all > 0, "ppo: a micro-batch without response tokens");
  out.weight = static_cast<double>(ranks) * static_cast<double>(own) / static_cast<double>(all);
  return out;
}

}  // namespace rlaif

// `rlaif bench attention`: the backend's causal attention (forward, and forward + backward) over
// a grid of shapes: head dims × sequence lengths × full and grouped-query heads, at a fixed
// token count and model width, so that each row compares with the same row of another
// implementation (tools/peers/torch_attention.py times PyTorch's scaled_dot_product_attention on
// the same grid).
//
// Row (Dh, T, Hkv): B = tokens / T sequences, H = width / Dh query heads, Hkv = H (full) or
// H / groups (grouped-query). FLOPs, the useful arithmetic of causal attention (half of the T²
// scores): forward 4·B·H·T²·Dh / 2 (q·kᵀ and P·v, 2 FLOPs per multiply-add), backward 2.5× the
// forward (five products to two), so forward + backward is 3.5× the forward.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "runtime/error.h"
#include "tools/bench_common.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

struct AttentionShape {
  int64_t B, H, Hkv, T, Dh;
};

struct AttentionRow {
  AttentionShape shape;
  double fwd_s = 0, fwd_bwd_s = 0;
  double fwd_flops = 0;
};

AttentionRow time_shape(Backend& backend, Device device, DType dtype, const AttentionShape& a,
                        int warmup, int reps) {
  uint64_t stream = 1;
  auto randn = [&](const Shape& shape) {
    Tensor t = Tensor::empty(shape, dtype, device);
    backend.random_normal(t, 1234, (stream++) << 40, 0.0f, 1.0f);
    return t;
  };
  const Shape q_shape = {a.B, a.T, a.H, a.Dh}, kv_shape = {a.B, a.T, a.Hkv, a.Dh};
  Tensor q = randn(q_shape), k = randn(kv_shape), v = randn(kv_shape), dout = randn(q_shape);
  Tensor out = Tensor::empty(q_shape, dtype, device), dq = Tensor::empty(q_shape, dtype, device);
  Tensor dk = Tensor::empty(kv_shape, dtype, device), dv = Tensor::empty(kv_shape, dtype, device);
  Tensor lse = Tensor::empty({a.B, a.H, a.T}, DType::f32, device);
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.Dh));
  auto forward = [&] { backend.attention(q, k, v, Tensor(), -1, 0, scale, out, lse); };
  AttentionRow row{a};
  row.fwd_flops = 4.0 * static_cast<double>(a.B * a.H) * static_cast<double>(a.T) *
                  static_cast<double>(a.T) * static_cast<double>(a.Dh) / 2.0;
  row.fwd_s = median(time_runs(backend, forward, warmup, reps));
  row.fwd_bwd_s = median(time_runs(
      backend,
      [&] {
        forward();
        backend.attention_backward(q, k, v, Tensor(), -1, 0, scale, out, lse, dout, dq, dk, dv);
      },
      warmup, reps));
  return row;
}

}  // namespace

int bench_attention_main(const std::vector<std::string>& args) {
  Flags flags("bench attention",
              "Time the backend's causal attention, forward and forward + backward, over a grid\n"
              "of shapes: every --head-dim × --seq, each with full heads and with grouped-query\n"
              "heads (--groups query heads per kv head). Each row holds --tokens tokens (B =\n"
              "tokens / T sequences) of a model --width wide (H = width / Dh query heads). Rates\n"
              "count the useful FLOPs of causal attention (half the scores; the backward pass\n"
              "2.5x the forward), each the median of --reps runs timed on the device (CUDA\n"
              "events; the host clock on the CPU). The default grid is sized for a GPU; on a CPU\n"
              "use e.g. --seq 64,128 --tokens 256.");
  flags.option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "f32, or bf16 (cuda only)")
      .option("head-dim", "64,128", "comma-separated head dims (Dh)")
      .option("seq", "1024,2048,4096", "comma-separated sequence lengths (T)")
      .option("tokens", "8192", "tokens per row: B = tokens / T")
      .option("width", "768", "model width: H = width / Dh query heads")
      .option("groups", "3", "query heads per kv head of the grouped-query rows (1 = none)")
      .option("warmup", "2", "untimed runs per row")
      .option("reps", "10", "timed runs per row (medians are reported)")
      .option("json", "", "also write the figures to this JSON file");
  if (!flags.parse(args)) return 0;

  const std::vector<int64_t> head_dims = positive_int_list("head-dim", flags.str("head-dim"), 256);
  const std::vector<int64_t> seqs = positive_int_list("seq", flags.str("seq"));
  const int64_t tokens = flags.integer("tokens"), width = flags.integer("width");
  const int64_t groups = flags.integer("groups");
  if (groups <= 0) throw UsageError("--groups must be positive");
  if (flags.integer("warmup") < 0) throw UsageError("--warmup must not be negative");
  if (flags.integer("reps") <= 0) throw UsageError("--reps must be positive");
  std::vector<AttentionShape> shapes;
  for (int64_t dh : head_dims) {
    if (width <= 0 || width % dh != 0) {
      throw UsageError("--width " + std::to_string(width) + " is not a multiple of --head-dim " +
                       std::to_string(dh));
    }
    const int64_t H = width / dh;
    for (int64_t T : seqs) {
      if (tokens <= 0 || tokens % T != 0) {
        throw UsageError("--tokens " + std::to_string(tokens) + " is not a multiple of --seq " +
                         std::to_string(T));
      }
      shapes.push_back({tokens / T, H, H, T, dh});
      if (groups > 1) {
        if (H % groups != 0) {
          throw UsageError("--groups " + std::to_string(groups) + " does not divide the " +
                           std::to_string(H) + " heads of --head-dim " + std::to_string(dh));
        }
        shapes.push_back({tokens / T, H, H / groups, T, dh});
      }
    }
  }
  const BenchDevice dev = bench_device(flags.str("device"));
  const DType dtype = bench_dtype(flags.str("dtype"), dev);
  Backend& backend = backend_for(dev.device);
  const int warmup = static_cast<int>(flags.integer("warmup"));
  const int reps = static_cast<int>(flags.integer("reps"));

  std::fprintf(stderr, "bench attention: %zu shapes on %s, %s\n", shapes.size(), dev.name.c_str(),
               dtype_name(dtype));
  std::vector<AttentionRow> rows;
  for (const AttentionShape& a : shapes) {
    rows.push_back(time_shape(backend, dev.device, dtype, a, warmup, reps));
    std::fprintf(stderr, "  B %lld H %lld/%lld T %lld Dh %lld: %.3f ms fwd, %.3f ms fwd+bwd\n",
                 static_cast<long long>(a.B), static_cast<long long>(a.H),
                 static_cast<long long>(a.Hkv), static_cast<long long>(a.T),
                 static_cast<long long>(a.Dh), rows.back().fwd_s * 1e3,
                 rows.back().fwd_bwd_s * 1e3);
  }

  std::printf("bench attention: %s (%s), %s, causal, %lld tokens a row, median of %d runs\n",
              dev.device.str().c_str(), dev.name.c_str(), dtype_name(dtype),
              static_cast<long long>(tokens), reps);
  Table table({"B x H/Hkv x T x Dh", "fwd ms", "fwd TFLOP/s", "fwd+bwd ms", "fwd+bwd TFLOP/s"});
  std::vector<JsonObject> json_rows;
  for (const AttentionRow& r : rows) {
    const AttentionShape& a = r.shape;
    const std::string dims = std::to_string(a.B) + " x " + std::to_string(a.H) + "/" +
                             std::to_string(a.Hkv) + " x " + std::to_string(a.T) + " x " +
                             std::to_string(a.Dh);
    const double fwd_rate = r.fwd_flops / r.fwd_s, both_rate = 3.5 * r.fwd_flops / r.fwd_bwd_s;
    table.add({dims, fixed(r.fwd_s * 1e3, 3), fixed(fwd_rate / 1e12, 3),
               fixed(r.fwd_bwd_s * 1e3, 3), fixed(both_rate / 1e12, 3)});
    for (const auto& [name, seconds, rate] :
         {std::tuple{"attention fwd", r.fwd_s, fwd_rate},
          std::tuple{"attention fwd+bwd", r.fwd_bwd_s, both_rate}}) {
      JsonObject row;
      row.str("name", name)
          .integer("B", a.B)
          .integer("H", a.H)
          .integer("Hkv", a.Hkv)
          .integer("T", a.T)
          .integer("Dh", a.Dh)
          .num("ms", seconds * 1e3)
          .num("tflops", rate / 1e12);
      json_rows.push_back(row);
    }
  }
  table.print();
  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "attention")
        .str("device", dev.device.str())
        .str("device_name", dev.name)
        .str("dtype", dtype_name(dtype))
        .integer("tokens", tokens)
        .integer("width", width)
        .integer("reps", reps)
        .array("rows", json_rows);
    write_json_file(flags.str("json"), json);
  }
  return 0;
}

}  // namespace rlaif::cli

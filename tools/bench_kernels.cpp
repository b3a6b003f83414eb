// `rlaif bench kernels`: the time and rate of each main primitive of kernels/backend.h at the
// shapes of GPT-2 124M training, each set against a ceiling measured on the same device: a
// large device-to-device copy for memory-bound kernels (GB/s, bytes read + written) and a large
// square GEMM for matmul and attention (TFLOP/s).
//
// Byte counts are the minimum traffic each primitive must make (every input read once, every
// output written once), so a fraction of the copy ceiling near 1 means the kernel is as fast as
// its memory allows. FLOP counts are the useful arithmetic (causal attention counts only the
// unmasked half of the scores).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

#include "kernels/backend.h"
#include "tools/bench_common.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

struct KernelSizes {
  std::string name;                     // "full" or "small"
  int64_t rows, d, ffn, vocab;          // N = B·T, d_model, MLP width, vocabulary
  int64_t batch, heads, seq, head_dim;  // attention
  int64_t adamw_params;                 // parameters of one AdamW step
  int64_t model_layers;                 // layers of the GPT-2 whose tensors the optimizer rows use
  int64_t copy_bytes;                   // size of the copy ceiling's buffers
  int64_t gemm;                         // side of the square GEMM ceiling
  int warmup, reps;
};

// GPT-2 124M with B = 8, T = 1024 (llm.c's benchmark shapes).
KernelSizes full_sizes() {
  return {"full", 8192, 768, 3072, 50257, 8, 12, 1024, 64, 124439808, 12, 512ll << 20, 8192, 3, 10};
}

// The same widths with 32x fewer rows, a 4x shorter sequence, a 4M-parameter optimizer step and
// a one-layer model's tensors: seconds on a small CPU instead of minutes.
KernelSizes small_sizes() {
  return {"small", 256, 768, 3072, 50257, 1, 12, 256, 64, 4ll << 20, 1, 64ll << 20, 1024, 1, 3};
}

struct KernelResult {
  std::string name, shape;
  double seconds = 0;
  double rate = 0;       // FLOP/s or bytes/s
  bool compute = false;  // rate is FLOP/s (against the GEMM ceiling), else bytes/s (copy ceiling)
};

class KernelBench {
 public:
  KernelBench(Backend& backend, Device device, DType dtype, const KernelSizes& sizes)
      : backend_(backend), device_(device), dtype_(dtype), s_(sizes) {}

  // Random normal values (float dtypes) on the device; each tensor gets its own stream.
  Tensor randn(const Shape& shape, DType dtype, float std = 1.0f) {
    Tensor t = Tensor::empty(shape, dtype, device_);
    backend_.random_normal(t, 1234, (next_stream_++) << 40, 0.0f, std);
    return t;
  }
  Tensor randn(const Shape& shape) { return randn(shape, dtype_); }
  Tensor empty(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype, device_); }
  Tensor empty(const Shape& shape) { return empty(shape, dtype_); }
  // Uniform ids in [0, limit), uploaded (token ids, targets, RoPE positions).
  Tensor ids(const Shape& shape, int64_t limit) {
    std::vector<int32_t> v(static_cast<size_t>(shape_numel(shape)));
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(limit - 1));
    for (auto& x : v) x = pick(rng_);
    return Tensor::from_vector(v, shape).to(device_);
  }

  // Times fn and records its rate from `work` (FLOPs when compute, else bytes) per run.
  double run(const std::string& name, const std::string& shape, double work, bool compute,
             const std::function<void()>& fn) {
    double seconds = median(time_runs(backend_, fn, s_.warmup, s_.reps, backlog()));
    results_.push_back({name, shape, seconds, work / seconds, compute});
    std::fprintf(stderr, "  %-22s %9.3f ms\n", name.c_str(), seconds * 1e3);
    return work / seconds;
  }

  // On a GPU: 16 copies of a 64 MiB buffer (~0.5 ms on an H100), queued before a kernel's
  // timed runs so that the host has queued all of them before the device starts the first.
  std::function<void()> backlog() {
    if (!device_.is_cuda()) return nullptr;
    if (!backlog_src_.defined()) {
      backlog_src_ = empty({int64_t{32} << 20}, DType::bf16);
      backlog_dst_ = empty({int64_t{32} << 20}, DType::bf16);
      backend_.fill(backlog_src_, 1.0);
    }
    return [this] {
      for (int i = 0; i < 16; ++i) backend_.copy(backlog_src_, backlog_dst_);
    };
  }

  void ceilings();
  void matmuls();
  void norms();
  void elementwise();
  void attention();
  void loss_and_optimizer();
  void model_optimizer();

  const std::vector<KernelResult>& results() const { return results_; }
  double copy_rate() const { return copy_rate_; }
  double gemm_rate() const { return gemm_rate_; }

 private:
  Backend& backend_;
  Device device_;
  DType dtype_;
  KernelSizes s_;
  double copy_rate_ = 0, gemm_rate_ = 0;
  std::vector<KernelResult> results_;
  uint64_t next_stream_ = 1;
  std::mt19937 rng_{7};
  Tensor backlog_src_, backlog_dst_;
};

std::string dims(std::initializer_list<int64_t> d, const char* sep = "x") {
  std::string out;
  for (int64_t v : d) {
    if (!out.empty()) out += sep;
    out += std::to_string(v);
  }
  return out;
}

// "256x768 @ 768x3072": the operand shapes of a matrix product as it is computed.
std::string product(std::initializer_list<int64_t> a, std::initializer_list<int64_t> b) {
  return dims(a) + " @ " + dims(b);
}

std::string attention_dims(int64_t B, int64_t H, int64_t T, int64_t Dh) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "B%lld H%lld T%lld Dh%lld", static_cast<long long>(B),
                static_cast<long long>(H), static_cast<long long>(T), static_cast<long long>(Dh));
  return buf;
}

void KernelBench::ceilings() {
  const int64_t n = s_.copy_bytes / static_cast<int64_t>(dtype_size(dtype_));
  {
    Tensor src = randn({n}), dst = empty({n});
    copy_rate_ =
        run("copy (ceiling)", human_bytes(static_cast<double>(s_.copy_bytes)),
            2.0 * static_cast<double>(s_.copy_bytes), false, [&] { backend_.copy(src, dst); });
  }
  const int64_t g = s_.gemm;
  Tensor a = randn({g, g}), b = randn({g, g}), c = empty({g, g});
  gemm_rate_ =
      run("gemm (ceiling)", product({g, g}, {g, g}), 2.0 * std::pow(static_cast<double>(g), 3),
          true, [&] { backend_.matmul(a, b, c, false, false); });
}

void KernelBench::matmuls() {
  // A Linear layer d -> ffn (GPT-2's c_fc) and the two GEMMs of its backward pass.
  const int64_t N = s_.rows, D = s_.d, F = s_.ffn;
  const double flops =
      2.0 * static_cast<double>(N) * static_cast<double>(D) * static_cast<double>(F);
  Tensor x = randn({N, D}), w = randn({F, D}, dtype_, 0.02f), y = empty({N, F});
  Tensor dy = randn({N, F}), dx = empty({N, D}), dw = empty({F, D});
  run("matmul fwd", product({N, D}, {D, F}), flops, true,
      [&] { backend_.matmul(x, w, y, false, true); });
  // The same product with GPT-2's bias and GELU after it, in one call (cuBLASLt's GELU_AUX_BIAS
  // epilogue on the GPU; RLAIF_GELU_EPILOGUE=0 times the composition): against "matmul fwd"
  // plus "gelu", the saving of the fusion.
  Tensor bias = randn({F}), pre = empty({N, F});
  run("linear_gelu fwd", product({N, D}, {D, F}), flops, true,
      [&] { backend_.linear_gelu(x, w, bias, pre, y); });
  run("matmul bwd dx", product({N, F}, {F, D}), flops, true,
      [&] { backend_.matmul(dy, w, dx, false, false); });
  run("matmul bwd dW", product({F, N}, {N, D}), flops, true,
      [&] { backend_.matmul(dy, x, dw, true, false); });
  // The LM head: logits [N, V] rows of V·2 bytes, not a multiple of 16 for GPT-2's V = 50257,
  // the case cuda_matmul.cu pads (RLAIF_MATMUL_PAD=0 times it unpadded).
  const int64_t V = s_.vocab;
  const double head =
      2.0 * static_cast<double>(N) * static_cast<double>(D) * static_cast<double>(V);
  Tensor wte = randn({V, D}, dtype_, 0.02f), logits = empty({N, V}), dlogits = randn({N, V});
  Tensor dwte = empty({V, D});
  run("lm-head fwd", product({N, D}, {D, V}), head, true,
      [&] { backend_.matmul(x, wte, logits, false, true); });
  run("lm-head bwd dx", product({N, V}, {V, D}), head, true,
      [&] { backend_.matmul(dlogits, wte, dx, false, false); });
  run("lm-head bwd dW", product({V, N}, {N, D}), head, true,
      [&] { backend_.matmul(dlogits, x, dwte, true, false); });
}

void KernelBench::norms() {
  const int64_t N = s_.rows, D = s_.d;
  const double es = static_cast<double>(dtype_size(dtype_));
  const double nd = static_cast<double>(N * D), n = static_cast<double>(N);
  Tensor x = randn({N, D}), gamma = randn({D}), beta = randn({D}), out = empty({N, D});
  Tensor mean = empty({N}, DType::f32), rstd = empty({N}, DType::f32);
  Tensor dout = randn({N, D}), dx = empty({N, D}), dgamma = empty({D}), dbeta = empty({D});
  const std::string shape = dims({N, D});
  run("layernorm fwd", shape, 2 * nd * es + 8 * n, false,
      [&] { backend_.layernorm(x, gamma, beta, 1e-5f, out, mean, rstd); });
  run("layernorm bwd", shape, 3 * nd * es + 8 * n, false,
      [&] { backend_.layernorm_backward(x, gamma, mean, rstd, dout, dx, dgamma, dbeta); });
  run("rmsnorm fwd", shape, 2 * nd * es + 4 * n, false,
      [&] { backend_.rmsnorm(x, gamma, 1e-5f, out, rstd); });
  run("rmsnorm bwd", shape, 3 * nd * es + 4 * n, false,
      [&] { backend_.rmsnorm_backward(x, gamma, rstd, dout, dx, dgamma); });
  // The fused residual step: x and residual read, sum and out written (the unfused add + norm
  // moves 5·N·D elements); the backward accumulating into dx ("acc") reads it as well.
  Tensor residual = randn({N, D}), sum = empty({N, D});
  run("add_layernorm fwd", shape, 4 * nd * es + 8 * n, false,
      [&] { backend_.add_layernorm(x, residual, gamma, beta, 1e-5f, sum, out, mean, rstd); });
  run("add_rmsnorm fwd", shape, 4 * nd * es + 4 * n, false,
      [&] { backend_.add_rmsnorm(x, residual, gamma, 1e-5f, sum, out, rstd); });
  run("layernorm bwd acc", shape, 4 * nd * es + 8 * n, false,
      [&] { backend_.layernorm_backward(x, gamma, mean, rstd, dout, dx, dgamma, dbeta, true); });
}

void KernelBench::elementwise() {
  const int64_t N = s_.rows, D = s_.d, F = s_.ffn, V = s_.vocab;
  const double es = static_cast<double>(dtype_size(dtype_));
  {
    Tensor gate = randn({N, F}), up = randn({N, F}), out = empty({N, F});
    const double nf = static_cast<double>(N * F);
    run("swiglu", dims({N, F}), 3 * nf * es, false, [&] { backend_.swiglu(gate, up, out); });
    run("gelu", dims({N, F}), 2 * nf * es, false,
        [&] { backend_.unary(UnaryOp::gelu_tanh, gate, out); });
  }
  {
    // Rows of attention scores, as an unfused attention would normalise them.
    const int64_t R = s_.batch * s_.heads * s_.seq, C = s_.seq;
    Tensor x = randn({R, C}), y = empty({R, C});
    run("softmax", dims({R, C}), 2 * static_cast<double>(R * C) * es, false,
        [&] { backend_.softmax(x, y); });
  }
  {
    Tensor weight = randn({V, D}, dtype_, 0.02f), ids_t = ids({N}, V), out = empty({N, D});
    Tensor dout = randn({N, D}), dweight = empty({V, D});
    const double nd = static_cast<double>(N * D);
    run("embedding fwd", dims({N, D}), 2 * nd * es + 4.0 * static_cast<double>(N), false,
        [&] { backend_.embedding(weight, ids_t, out); });
    run("embedding bwd", dims({V, D}),
        (nd + static_cast<double>(V * D)) * es + 4.0 * static_cast<double>(N), false,
        [&] { backend_.embedding_backward(ids_t, dout, dweight); });
    // Added into an existing gradient (a tied head's): only the rows the ids touch are read and
    // written (at most N of them), so the bytes are dout's plus twice the touched rows'.
    run("embedding bwd +=", dims({V, D}), 3 * nd * es + 4.0 * static_cast<double>(N), false,
        [&] { backend_.embedding_backward(ids_t, dout, dweight, /*accumulate=*/true); });
  }
  for (int64_t C : {D, F}) {
    // A bias gradient: the sum over the rows of a linear layer's output gradient.
    Tensor dy = randn({N, C}), db = empty({C});
    run("bias grad " + std::to_string(C), dims({N, C}), static_cast<double>(N * C + C) * es, false,
        [&] { backend_.reduce(ReduceOp::sum, dy, 0, db); });
  }
  {
    const int64_t B = s_.batch, T = s_.seq, H = s_.heads, Dh = s_.head_dim;
    Tensor x = randn({B, T, H, Dh}), out = empty({B, T, H, Dh}), pos = ids({B, T}, T);
    run("rope", attention_dims(B, H, T, Dh), 2 * static_cast<double>(B * T * H * Dh) * es, false,
        [&] { backend_.rope(x, pos, 10000.0f, false, out); });
  }
}

void KernelBench::attention() {
  const int64_t B = s_.batch, T = s_.seq, H = s_.heads, Dh = s_.head_dim;
  const Shape shape = {B, T, H, Dh};
  Tensor q = randn(shape), k = randn(shape), v = randn(shape), out = empty(shape);
  Tensor lse = empty({B, H, T}, DType::f32);
  Tensor dout = randn(shape), dq = empty(shape), dk = empty(shape), dv = empty(shape);
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  // Causal: half of the T² scores; 2 FLOPs per multiply-add, for q·kᵀ and for P·v.
  const double fwd = 4.0 * static_cast<double>(B * H) * static_cast<double>(T) *
                     static_cast<double>(T) * static_cast<double>(Dh) / 2.0;
  const std::string text = attention_dims(B, H, T, Dh);
  run("attention fwd", text, fwd, true,
      [&] { backend_.attention(q, k, v, Tensor(), -1, 0, scale, out, lse); });
  // The backward pass does 2.5x the forward's arithmetic (five GEMM-shaped products to two).
  run("attention fwd+bwd", text, 3.5 * fwd, true, [&] {
    backend_.attention(q, k, v, Tensor(), -1, 0, scale, out, lse);
    backend_.attention_backward(q, k, v, Tensor(), -1, 0, scale, out, lse, dout, dq, dk, dv);
  });
}

void KernelBench::loss_and_optimizer() {
  const int64_t N = s_.rows, V = s_.vocab;
  const double es = static_cast<double>(dtype_size(dtype_));
  {
    Tensor logits = randn({N, V}), targets = ids({N}, V), dlogits = empty({N, V});
    Tensor losses = empty({N}, DType::f32), lse = empty({N}, DType::f32);
    Tensor dlosses = empty({N}, DType::f32);
    backend_.fill(dlosses, 1.0 / static_cast<double>(N));
    // Forward reads the logits; backward reads them again and writes their gradient.
    run("cross_entropy fwd+bwd", dims({N, V}),
        3 * static_cast<double>(N * V) * es + 16.0 * static_cast<double>(N), false, [&] {
          backend_.cross_entropy(logits, targets, -100, losses, lse);
          backend_.cross_entropy_backward(logits, targets, lse, dlosses, -100, dlogits);
        });
  }
  {
    const int64_t P = s_.adamw_params;
    Tensor param = randn({P}, dtype_, 0.02f), grad = randn({P}, dtype_, 1e-3f);
    Tensor m = Tensor::zeros({P}, DType::f32, device_), v = Tensor::zeros({P}, DType::f32, device_);
    Tensor master;  // low-precision parameters are updated through an f32 master copy
    if (dtype_ != DType::f32) {
      master = empty({P}, DType::f32);
      backend_.cast(param, master);
    }
    // Per parameter: grad read; m, v read and written; the parameter (and master) read and
    // written, except that with a master copy the low-precision parameter is only written.
    const double per = master.defined() ? 2 * es + 24 : 3 * es + 16;
    AdamWHyper h{1e-4, 0.9, 0.95, 1e-8, 0.1, 1};
    run("adamw_step", dims({P}), per * static_cast<double>(P), false,
        [&] { backend_.adamw_step(param, grad, m, v, master, h); });
  }
}

// The optimizer's work on a whole model's tensors (rlaif's GPT-2 124M has 196: q, k and v are
// separate, and most are biases and norm gains of 768 elements), done per tensor (adamw_step and
// squared_norm per tensor) and with adamw_steps and squared_norms. Bytes as the adamw_step row
// counts them (the norm reads each gradient once).
void KernelBench::model_optimizer() {
  const int64_t D = s_.d, F = s_.ffn;
  std::vector<Shape> shapes = {{s_.vocab, D}, {1024, D}};
  // Per layer: ln_1; the q, k, v and o projections; ln_2; fc_in, fc_out (weight, then bias).
  const std::vector<Shape> layer = {{D},    {D}, {D, D}, {D}, {D, D}, {D}, {D, D}, {D},
                                    {D, D}, {D}, {D},    {D}, {F, D}, {F}, {D, F}, {D}};
  for (int64_t l = 0; l < s_.model_layers; ++l)
    shapes.insert(shapes.end(), layer.begin(), layer.end());
  shapes.push_back({D});
  shapes.push_back({D});
  std::vector<AdamWTensors> entries;
  std::vector<Tensor> grads;
  int64_t P = 0;
  for (const Shape& shape : shapes) {
    AdamWTensors e;
    e.param = randn(shape, dtype_, 0.02f);
    e.grad = randn(shape, dtype_, 1e-3f);
    e.m = Tensor::zeros(shape, DType::f32, device_);
    e.v = Tensor::zeros(shape, DType::f32, device_);
    if (dtype_ != DType::f32) {
      e.master = empty(shape, DType::f32);
      backend_.cast(e.param, e.master);
    }
    e.weight_decay = shape.size() >= 2 ? 0.1 : 0.0;
    P += shape_numel(shape);
    grads.push_back(e.grad);
    entries.push_back(std::move(e));
  }
  const double es = static_cast<double>(dtype_size(dtype_));
  const double adamw_bytes = (dtype_ != DType::f32 ? 2 * es + 24 : 3 * es + 16) * P;
  const double norm_bytes = es * static_cast<double>(P);
  const std::string what = std::to_string(shapes.size()) + " tensors";
  AdamWHyper h{1e-4, 0.9, 0.95, 1e-8, 0.0, 1};
  // The gradient norm as global_grad_norm computed it before squared_norms: a squared norm and a
  // read back (a wait for the device) per tensor.
  run("grad norm per tensor", what, norm_bytes, false, [&] {
    for (const Tensor& g : grads) {
      Tensor out = empty({}, DType::f32);
      backend_.squared_norm(g, out);
      (void)out.item();
    }
  });
  Tensor sums = empty({static_cast<int64_t>(grads.size())}, DType::f32);
  run("grad norm squared_norms", what, norm_bytes, false, [&] {
    backend_.squared_norms(grads, sums);
    (void)sums.to_vector<float>();
  });
  // Clipping by 0.5 and the update: an affine over each gradient, then an update per tensor
  // (the affine's own traffic, 2 bytes per element read and written, is left out of the count).
  run("clip+adamw per tensor", what, adamw_bytes, false, [&] {
    for (const AdamWTensors& e : entries) {
      backend_.affine(e.grad, 0.5f, 0.0f, e.grad);
      AdamWHyper he = h;
      he.weight_decay = e.weight_decay;
      backend_.adamw_step(e.param, e.grad, e.m, e.v, e.master, he);
    }
  });
  run("clip+adamw adamw_steps", what, adamw_bytes, false,
      [&] { backend_.adamw_steps(entries, h, 0.5f); });
}

std::string percent(double fraction) {
  if (!std::isfinite(fraction) || fraction <= 0) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * fraction);
  return buf;
}

// "attention fwd+bwd" -> "attention_fwd_bwd", "matmul bwd dW" -> "matmul_bwd_dw": JSON names.
std::string json_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (word) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

}  // namespace

int bench_kernels_main(const std::vector<std::string>& args) {
  Flags flags(
      "bench kernels",
      "Time each main primitive of the backend at GPT-2 124M training shapes (full:\n"
      "B*T = 8192 rows of width 768, MLP 3072, vocabulary 50257, attention B 8 x H 12 x\n"
      "T 1024 x Dh 64, AdamW over 124M parameters) and report its rate as a fraction of\n"
      "two ceilings measured here: a device-to-device copy (GB/s, bytes read + written)\n"
      "for memory-bound kernels and a square GEMM (TFLOP/s) for matmul and attention.\n"
      "The last rows time the optimizer over GPT-2 124M's 196 tensors (the gradient norm,\n"
      "then clipping and AdamW), per tensor and with the multi-tensor primitives.\n"
      "Each figure is the median of several runs after a warm-up, queued back to back\n"
      "and each timed on the device (CUDA events; the host clock on the CPU), so a\n"
      "10 us kernel is not timed as its launch. `small` sizes (256 rows, T 256, 4M params,\n"
      "one layer's tensors, 1024^3 GEMM) finish in seconds on a CPU. A kernel whose data\n"
      "fits in cache can beat the copy ceiling (over 100%).");
  flags.option("device", "cpu", "cpu or cuda[:N]")
      .option("size", "auto", "full, small, or auto (full on cuda, small on cpu)")
      .option("dtype", "auto", "float dtype: f32, bf16 (cuda only), or auto (bf16 on cuda)")
      .option("reps", "0", "timed runs per kernel (0 = 10 for full sizes, 3 for small)")
      .option("json", "", "also write the figures to this JSON file");
  if (!flags.parse(args)) return 0;

  BenchDevice dev = bench_device(flags.str("device"));
  const std::string size = flags.str("size"), dtype_text = flags.str("dtype");
  if (size != "auto" && size != "full" && size != "small") {
    throw UsageError("--size must be full, small or auto, not '" + size + "'");
  }
  KernelSizes sizes =
      size == "full" || (size == "auto" && dev.device.is_cuda()) ? full_sizes() : small_sizes();
  if (flags.integer("reps") < 0) throw UsageError("--reps must not be negative");
  if (flags.integer("reps") > 0) sizes.reps = static_cast<int>(flags.integer("reps"));
  if (dtype_text != "auto" && dtype_text != "f32" && dtype_text != "bf16") {
    throw UsageError("--dtype must be f32, bf16 or auto, not '" + dtype_text + "'");
  }
  if (dtype_text == "bf16" && dev.device.is_cpu()) {
    throw UsageError("--dtype bf16 needs --device cuda: the CPU backend computes in f32 only");
  }
  const DType dtype = dtype_text == "bf16" || (dtype_text == "auto" && dev.device.is_cuda())
                          ? DType::bf16
                          : DType::f32;

  KernelBench bench(backend_for(dev.device), dev.device, dtype, sizes);
  std::fprintf(stderr, "bench kernels: %s sizes on %s, %s\n", sizes.name.c_str(), dev.name.c_str(),
               dtype_name(dtype));
  bench.ceilings();
  bench.matmuls();
  bench.attention();
  bench.norms();
  bench.elementwise();
  bench.loss_and_optimizer();
  bench.model_optimizer();

  std::printf("bench kernels: %s (%s), %s, %s sizes (%lld rows of width %lld), median of %d runs\n",
              dev.device.str().c_str(), dev.name.c_str(), dtype_name(dtype), sizes.name.c_str(),
              static_cast<long long>(sizes.rows), static_cast<long long>(sizes.d), sizes.reps);
  std::printf("ceilings: copy %.1f GB/s, GEMM %.2f TFLOP/s\n", bench.copy_rate() / 1e9,
              bench.gemm_rate() / 1e12);
  Table table({"kernel", "shape", "ms", "rate", "unit", "of ceiling"});
  std::vector<JsonObject> rows;
  for (const KernelResult& r : bench.results()) {
    const double ceiling = r.compute ? bench.gemm_rate() : bench.copy_rate();
    const double shown = r.compute ? r.rate / 1e12 : r.rate / 1e9;
    const bool is_ceiling = r.name.find("(ceiling)") != std::string::npos;
    table.add({r.name, r.shape, fixed(r.seconds * 1e3, 3), fixed(shown, r.compute ? 3 : 1),
               r.compute ? "TFLOP/s" : "GB/s", is_ceiling ? "" : percent(r.rate / ceiling)});
    if (is_ceiling) continue;
    JsonObject row;
    row.str("name", json_name(r.name)).num("ms", r.seconds * 1e3);
    row.num(r.compute ? "tflops" : "gb_s", shown).num("of_ceiling", r.rate / ceiling);
    rows.push_back(row);
  }
  table.print();

  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "kernels")
        .str("device", dev.device.str())
        .str("device_name", dev.name)
        .str("dtype", dtype_name(dtype))
        .str("sizes", sizes.name)
        .integer("rows", sizes.rows)
        .integer("reps", sizes.reps)
        .num("copy_gb_s", bench.copy_rate() / 1e9)
        .num("gemm_tflops", bench.gemm_rate() / 1e12)
        .array("kernels", rows);
    write_json_file(flags.str("json"), json);
  }
  return 0;
}

}  // namespace rlaif::cli

#include "kernels/profile_label.h"

#include <map>
#include <string_view>
#include <utility>

#include "runtime/error.h"

namespace rlaif {
namespace {

// "8x1024x768"; "scalar" for a 0-d tensor.
std::string dims(const Tensor& t) {
  if (t.dim() == 0) return "scalar";
  std::string s;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d) s += 'x';
    s += std::to_string(t.shape()[static_cast<size_t>(d)]);
  }
  return s;
}

// "name 8x1024x768 bf16": the signature of most primitives, keyed by their main tensor.
std::string sig(const std::string& name, const Tensor& t) {
  return name + " " + dims(t) + " " + dtype_name(t.dtype());
}

double bytes_of(const Tensor& t) {
  return t.defined() ? static_cast<double>(t.nbytes()) : 0.0;
}

// Query/key pairs a causal attention evaluates per (batch, head): query i sits at key position
// kv_len - Tq + i and sees keys 0..that position. Segments and sliding windows are ignored (an
// upper bound).
double causal_pairs(int64_t tq, int64_t kv_len) {
  const double q = static_cast<double>(tq), l = static_cast<double>(kv_len);
  if (kv_len >= tq) return q * (l - q) + q * (q + 1.0) / 2.0;
  return l * (l + 1.0) / 2.0;
}

// A call's arguments by the names backend.h gives them.
class Call {
 public:
  Call(const char* primitive, std::string_view names, std::span<const ProfileArg> args)
      : primitive_(primitive), args_(args) {
    // names is "(a, b, out)": split at the commas.
    names.remove_prefix(1);
    names.remove_suffix(1);
    while (!names.empty()) {
      const size_t comma = names.find(',');
      std::string_view name = names.substr(0, comma);
      while (name.starts_with(' ')) name.remove_prefix(1);
      index_.emplace(name, index_.size());
      if (comma == std::string_view::npos) break;
      names.remove_prefix(comma + 1);
    }
    RLAIF_CHECK(index_.size() == args_.size(), "profiler: ", primitive, " has ", args_.size(),
                " arguments but ", index_.size(), " names");
  }
  const ProfileArg& arg(std::string_view name) const {
    auto it = index_.find(name);
    RLAIF_CHECK(it != index_.end(), "profiler: ", primitive_, " has no argument ", name);
    return args_[it->second];
  }
  const Tensor& tensor(std::string_view name) const { return *arg(name).tensor; }
  bool flag(std::string_view name) const { return arg(name).flag; }
  double number(std::string_view name) const { return arg(name).number; }
  // Bytes of the named tensors, each counted once (absent tensors count 0).
  double bytes(std::initializer_list<std::string_view> names) const {
    double sum = 0.0;
    for (std::string_view n : names) sum += bytes_of(tensor(n));
    return sum;
  }
  // The default label: name, operations, then the first tensor's shape and dtype; bytes of every
  // tensor argument.
  ProfileLabel standard() const {
    std::string label = primitive_;
    const Tensor* key = nullptr;
    double bytes = 0.0;
    for (const ProfileArg& a : args_) {
      if (a.kind == ProfileArg::Kind::op) label += std::string(" ") + a.op;
      if (a.kind == ProfileArg::Kind::tensor) {
        if (key == nullptr) key = a.tensor;
        bytes += bytes_of(*a.tensor);
      }
      if (a.kind == ProfileArg::Kind::tensors) {
        for (const Tensor& t : a.tensors) bytes += bytes_of(t);
      }
    }
    if (key != nullptr) label = sig(label, *key);
    return {std::move(label), 0.0, bytes};
  }

 private:
  const char* primitive_;
  std::span<const ProfileArg> args_;
  std::map<std::string_view, size_t, std::less<>> index_;
};

// "attention B8 T1024 H12 Dh64 bf16", plus the key length (the cache capacity, not kv_len, so
// decoding steps share one label), kv heads and segments where they differ from the plain case.
// flops_per_dh: 4·Dh forward (q·k and p·v), 10·Dh backward (FlashAttention-2's count: scores
// recomputed, then dv, dp, dq, dk).
ProfileLabel attention_label(const Call& c, const char* name, double flops_per_dh) {
  const Tensor& q = c.tensor("q");
  const Tensor& k = c.tensor("k");
  const int64_t B = q.size(0), tq = q.size(1), hq = q.size(2), dh = q.size(3);
  const int64_t tk = k.size(1), hkv = k.size(2);
  std::string label = std::string(name) + " B" + std::to_string(B) + " T" + std::to_string(tq) +
                      " H" + std::to_string(hq) + " Dh" + std::to_string(dh) + " " +
                      dtype_name(q.dtype());
  if (tk != tq) label += " Tk" + std::to_string(tk);
  if (hkv != hq) label += " Hkv" + std::to_string(hkv);
  if (c.tensor("segment_ids").defined()) label += " seg";
  const auto kv_len = static_cast<int64_t>(c.number("kv_len"));
  const int64_t valid = kv_len < 0 ? tk : kv_len;
  const double flops = flops_per_dh * static_cast<double>(dh) * static_cast<double>(B) *
                       static_cast<double>(hq) * causal_pairs(tq, valid);
  return {std::move(label), flops, c.standard().bytes};
}

// "matmul [B12 ]MxNxK dtype nt[ +bias][ acc]": M, N from out, K from a.
ProfileLabel matmul_label(const Call& c) {
  const Tensor &a = c.tensor("a"), &out = c.tensor("out");
  const bool trans_a = c.flag("trans_a"), trans_b = c.flag("trans_b");
  const int64_t M = out.size(out.dim() - 2), N = out.size(out.dim() - 1);
  const int64_t K = trans_a ? a.size(a.dim() - 2) : a.size(a.dim() - 1);
  const int64_t batch = M * N > 0 ? out.numel() / (M * N) : 1;
  std::string label = "matmul ";
  if (out.dim() > 2) {
    label += 'B';
    label += std::to_string(batch);
    label += ' ';
  }
  label += std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " +
           dtype_name(a.dtype()) + " " + (trans_a ? "t" : "n") + (trans_b ? "t" : "n");
  if (c.tensor("bias").defined()) label += " +bias";
  if (c.number("beta") != 0.0) label += " acc";
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) *
                       static_cast<double>(K) * static_cast<double>(batch);
  return {std::move(label), flops, c.bytes({"a", "b", "out", "bias"})};
}

// "linear_gelu MxNxK dtype[ +bias]", as matmul's label for x @ wᵀ.
ProfileLabel linear_gelu_label(const Call& c) {
  const Tensor &x = c.tensor("x"), &w = c.tensor("w");
  const bool flat = x.dim() == 2 && w.dim() == 2;  // else the backend's own check throws
  const int64_t M = flat ? x.size(0) : 0, N = flat ? w.size(0) : 0, K = flat ? x.size(1) : 0;
  std::string label = "linear_gelu " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                      std::to_string(K) + " " + dtype_name(x.dtype());
  if (c.tensor("bias").defined()) label += " +bias";
  const double flops =
      2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  return {std::move(label), flops, c.standard().bytes};
}

// A broadcast b (a bias, a gain, a scalar) is a different kernel shape: say so.
ProfileLabel binary_label(const Call& c, const char* name) {
  const Tensor &a = c.tensor("a"), &b = c.tensor("b");
  std::string label = std::string(name) + " " + c.arg("op").op + " " + dims(a);
  if (b.shape() != a.shape()) label += " by " + dims(b);
  return {label + " " + dtype_name(a.dtype()), 0.0, c.standard().bytes};
}

// "adamw_steps 196 tensors 124439808 elements bf16 master": the first entry's layout. param, m, v
// and master are read and written; grad is read.
ProfileLabel adamw_steps_label(const Call& c) {
  const std::span<const AdamWTensors> params = c.arg("params").adamw_entries;
  int64_t elements = 0;
  double bytes = 0.0;
  for (const AdamWTensors& e : params) {
    elements += e.param.numel();
    bytes += bytes_of(e.grad) +
             2.0 * (bytes_of(e.param) + bytes_of(e.m) + bytes_of(e.v) + bytes_of(e.master));
  }
  std::string label = "adamw_steps " + std::to_string(params.size()) + " tensors " +
                      std::to_string(elements) + " elements";
  if (!params.empty()) {
    label += std::string(" ") + dtype_name(params[0].param.dtype()) +
             (params[0].master.defined() ? " master" : "");
  }
  return {std::move(label), 0.0, bytes};
}

ProfileLabel squared_norms_label(const Call& c) {
  const std::span<const Tensor> xs = c.arg("xs").tensors;
  int64_t elements = 0;
  double bytes = 0.0;
  for (const Tensor& x : xs) {
    elements += x.numel();
    bytes += bytes_of(x);
  }
  return {"squared_norms " + std::to_string(xs.size()) + " tensors " + std::to_string(elements) +
              " elements",
          0.0, bytes};
}

}  // namespace

ProfileLabel profile_label(const char* primitive, const char* names,
                           std::span<const ProfileArg> args) {
  const Call c(primitive, names, args);
  const std::string_view p = primitive;
  const ProfileLabel standard = c.standard();
  if (p == "matmul") return matmul_label(c);
  if (p == "linear_gelu") return linear_gelu_label(c);
  if (p == "attention") return attention_label(c, "attention", 4.0);
  if (p == "attention_backward") return attention_label(c, "attention_backward", 10.0);
  if (p == "binary" || p == "binary_backward") return binary_label(c, primitive);
  if (p == "adamw_steps") return adamw_steps_label(c);
  if (p == "squared_norms") return squared_norms_label(c);
  if (p == "copy") return {sig("copy", c.tensor("dst")), 0.0, standard.bytes};
  if (p == "where") return {sig("where", c.tensor("a")), 0.0, standard.bytes};
  if (p == "cast") {
    const Tensor &src = c.tensor("src"), &dst = c.tensor("dst");
    return {"cast " + dims(src) + " " + dtype_name(src.dtype()) + "->" + dtype_name(dst.dtype()),
            0.0, standard.bytes};
  }
  if (p == "concat") {
    const Tensor& out = c.tensor("out");
    return {sig("concat " + std::to_string(c.arg("inputs").tensors.size()) + " ->", out), 0.0,
            2.0 * bytes_of(out)};
  }
  if (p == "reduce" || p == "reduce_backward") {
    const std::string dim = std::to_string(static_cast<int>(c.number("dim")));
    return {sig(std::string(primitive) + " " + c.arg("op").op + " dim " + dim, c.tensor("x")), 0.0,
            standard.bytes};
  }
  if (p == "masked_reduce" || p == "masked_reduce_backward") {
    // The backward is keyed by dx: it has no x.
    const Tensor& key = p == "masked_reduce" ? c.tensor("x") : c.tensor("dx");
    return {sig(std::string(primitive) + (c.flag("mean") ? " mean" : " sum"), key), 0.0,
            standard.bytes};
  }
  if (p == "embedding") {
    // Only the gathered rows are read, so they (out's size) count, not the whole table.
    return {sig("embedding " + dims(c.tensor("weight")) + " ids", c.tensor("ids")), 0.0,
            c.bytes({"ids", "out", "out"})};
  }
  if (p == "embedding_backward") {
    // Accumulating touches only the rows the ids point at: read and written, as dout's size.
    const bool accumulate = c.flag("accumulate");
    const std::string label = std::string("embedding_backward ") + (accumulate ? "+= " : "") +
                              dims(c.tensor("dweight")) + " ids";
    return {sig(label, c.tensor("ids")), 0.0,
            accumulate ? c.bytes({"ids", "dout", "dout", "dout"})
                       : c.bytes({"ids", "dout", "dweight"})};
  }
  if (p == "layernorm_backward" || p == "rmsnorm_backward") {
    // An accumulating call reads dx as well: its own label, and dx counted twice.
    const bool accumulate = c.flag("accumulate_dx");
    return {sig(std::string(primitive) + (accumulate ? " +=" : ""), c.tensor("x")), 0.0,
            standard.bytes + (accumulate ? bytes_of(c.tensor("dx")) : 0.0)};
  }
  if (p == "rope") {
    return {sig(c.flag("inverse") ? "rope inverse" : "rope", c.tensor("x")), 0.0, standard.bytes};
  }
  if (p == "adamw_step") {
    // param, m, v and master are read and written; grad is read.
    const bool master = c.tensor("master").defined();
    return {sig(master ? "adamw_step master" : "adamw_step", c.tensor("param")), 0.0,
            c.bytes({"grad"}) + 2.0 * c.bytes({"param", "m", "v", "master"})};
  }
  if (p == "squared_norm") return {sig("squared_norm", c.tensor("x")), 0.0, c.bytes({"x"})};
  return standard;
}

}  // namespace rlaif

// The label, FLOPs and bytes of one profiled call (kernels/profiling_backend.h), made from the
// primitive's name and arguments alone, so that the profiler forwards every primitive of
// kernels/backend.h without restating any.
//
// By default a call is labelled with its name, its operation (unary, binary, reduce) and the
// shape and dtype of its first tensor ("unary gelu_tanh 8x1024x4 f32", "fill 5 f32"), and its
// bytes are the sum of the sizes of its tensors, each counted once. A few primitives say more
// (profile_label.cpp): matmul, linear_gelu and attention count FLOPs; cast, concat, binary,
// reduce, masked_reduce, embedding, rope, the norms' backwards and the optimizer's primitives name
// what tells their kernels apart. A new primitive gets the default until it is given one.
#pragma once

#include <array>
#include <concepts>
#include <span>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace rlaif {

// One argument of a primitive, as a label reads it: a tensor, a list of tensors or AdamW entries,
// an operation, a flag or a number. Holds pointers into the call's arguments: use it during the
// call only.
struct ProfileArg {
  enum class Kind { tensor, tensors, adamw_entries, op, flag, number, other };
  Kind kind = Kind::other;
  const Tensor* tensor = nullptr;
  std::span<const Tensor> tensors;
  std::span<const AdamWTensors> adamw_entries;
  const char* op = nullptr;
  bool flag = false;
  double number = 0.0;

  ProfileArg(const Tensor& t) : kind(Kind::tensor), tensor(&t) {}
  ProfileArg(const std::vector<Tensor>& ts) : kind(Kind::tensors), tensors(ts) {}
  ProfileArg(std::span<const Tensor> ts) : kind(Kind::tensors), tensors(ts) {}
  ProfileArg(std::span<const AdamWTensors> es) : kind(Kind::adamw_entries), adamw_entries(es) {}
  ProfileArg(UnaryOp o) : kind(Kind::op), op(unary_op_name(o)) {}
  ProfileArg(BinaryOp o) : kind(Kind::op), op(binary_op_name(o)) {}
  ProfileArg(ReduceOp o) : kind(Kind::op), op(reduce_op_name(o)) {}
  ProfileArg(bool b) : kind(Kind::flag), flag(b) {}
  template <typename T>
  requires(std::integral<T> || std::floating_point<T>) ProfileArg(T v)
      : kind(Kind::number), number(static_cast<double>(v)) {}
  ProfileArg(const AdamWHyper&) {}
};

// The arguments of one call, in order.
template <typename... Args>
std::array<ProfileArg, sizeof...(Args)> profile_args(const Args&... args) {
  return {ProfileArg(args)...};
}

// What one call adds to its label's aggregate.
struct ProfileLabel {
  std::string label;
  double flops = 0.0;
  double bytes = 0.0;
};

// The label of a call of `primitive` with `args`, whose names are `names` as backend.h writes the
// argument list: "(out, value)".
ProfileLabel profile_label(const char* primitive, const char* names,
                           std::span<const ProfileArg> args);

}  // namespace rlaif

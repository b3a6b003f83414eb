// Tensor: a contiguous, row-major, reference-counted n-dimensional array on one device.
//
// A Tensor is a handle: copying it shares the storage (like std::shared_ptr). Views are limited
// to what keeps memory contiguous: slices along the leading dimension and reshapes. Every layout
// change is an explicit kernel (see kernels/backend.h), which keeps kernels simple and fast.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace rlaif {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
// "[2, 3, 4]".
std::string shape_str(const Shape& shape);

// Owns one allocation; frees it through the device's memory manager when the last Tensor using
// it goes away.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  // Wraps memory owned elsewhere (e.g. a memory-mapped file), never freed here; `keep_alive`
  // (may be null) is held until the storage dies.
  Storage(void* data, size_t bytes, Device device, std::shared_ptr<void> keep_alive);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::shared_ptr<void> keep_alive_;  // held until this storage dies
  bool owned_ = true;                 // false for wrapped memory: not ours to free
};

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage; defined() is false

  // Uninitialised memory.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A CPU tensor holding `values` (numel must match the shape).
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // A 0-dimensional CPU f32 tensor.
  static Tensor scalar(float value);
  // Wraps external memory without copying (see Storage).
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device,
                     std::shared_ptr<void> keep_alive);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  // Size of dimension d; negative d counts from the end.
  int64_t size(int64_t d) const;
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  // Tensors sharing one storage (used by tests of view semantics).
  long use_count() const { return storage_ ? storage_.use_count() : 0; }
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

  void* raw_data() const;
  // Typed pointer; throws if T does not match the dtype. On CUDA tensors this is a device pointer.
  template <typename T>
  T* data() const {
    check_dtype(DTypeOf<T>::value, "data<T>()");
    return static_cast<T*>(raw_data());
  }

  // Rows [begin, end) of the leading dimension, sharing storage.
  Tensor slice(int64_t begin, int64_t end) const;
  // Row i of the leading dimension with that dimension dropped, sharing storage.
  Tensor select(int64_t i) const;
  // Same storage, new shape with the same numel; one dimension may be -1 (inferred).
  Tensor reshape(const Shape& shape) const;
  // A fresh copy on `device` (same dtype).
  Tensor to(Device device) const;
  Tensor clone() const;
  // Host copy of the elements (any device); T must match the dtype.
  template <typename T>
  std::vector<T> to_vector() const;
  // The value of a one-element tensor as float (any dtype, any device).
  float item() const;

  // Copies bytes from `src` (same dtype and numel, any device) into this tensor.
  void copy_from(const Tensor& src) const;

  // "f32[2, 3] cpu": what error messages print.
  std::string str() const;

 private:
  void check_dtype(DType expected, const char* what) const;

  std::shared_ptr<Storage> storage_;
  size_t offset_bytes_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::ostream& operator<<(std::ostream& os, const Shape& s);

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  Tensor t = empty(shape, DTypeOf<T>::value);
  RLAIF_CHECK(static_cast<int64_t>(values.size()) == t.numel(),
              "Tensor::from_vector: ", values.size(), " values for shape ", shape_str(shape));
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  check_dtype(DTypeOf<T>::value, "to_vector<T>()");
  std::vector<T> out(static_cast<size_t>(numel_));
  Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  std::copy(host.data<T>(), host.data<T>() + numel_, out.begin());
  return out;
}

}  // namespace rlaif

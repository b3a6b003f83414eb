#include "runtime/tensor.h"

#include <algorithm>
#include <sstream>

#include "runtime/allocator.h"

namespace rlaif {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = device_memory(device.type).allocate(bytes, device);
}

Storage::Storage(void* data, size_t bytes, Device device, std::shared_ptr<void> keep_alive)
    : data_(data),
      bytes_(bytes),
      device_(device),
      keep_alive_(std::move(keep_alive)),
      owned_(false) {}

Storage::~Storage() {
  if (owned_ && data_ != nullptr) {
    device_memory(device_.type).deallocate(data_, bytes_, device_);
  }
}

namespace {
void check_shape(const Shape& shape, const char* op) {
  for (int64_t d : shape) {
    RLAIF_CHECK(d >= 0, op, ": negative dimension in shape ", shape_str(shape));
  }
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "Tensor::empty");
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  device_memory(device.type).memset_zero(t.raw_data(), t.nbytes(), device);
  return t;
}

Tensor Tensor::scalar(float value) {
  return from_vector<float>({value}, {});
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device,
                    std::shared_ptr<void> keep_alive) {
  check_shape(shape, "Tensor::wrap");
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(data, t.nbytes(), device, std::move(keep_alive));
  return t;
}

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  int64_t idx = d < 0 ? d + n : d;
  RLAIF_CHECK(idx >= 0 && idx < n, "Tensor::size: dimension ", d, " out of range for ", *this);
  return shape_[static_cast<size_t>(idx)];
}

Device Tensor::device() const {
  return storage_ ? storage_->device() : Device::cpu();
}

void* Tensor::raw_data() const {
  RLAIF_CHECK(defined(), "Tensor: access to the data of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_bytes_;
}

void Tensor::check_dtype(DType expected, const char* what) const {
  RLAIF_CHECK(defined(), "Tensor::", what, ": undefined tensor");
  RLAIF_CHECK(dtype_ == expected, "Tensor::", what, ": tensor is ", *this, " but ",
              dtype_name(expected), " was requested");
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  RLAIF_CHECK(defined() && dim() >= 1,
              "Tensor::slice: needs a tensor with a leading dimension, got ", *this);
  RLAIF_CHECK(0 <= begin && begin <= end && end <= shape_[0], "Tensor::slice: rows [", begin, ", ",
              end, ") out of range for ", *this);
  Tensor t = *this;
  int64_t row = numel_ / std::max<int64_t>(shape_[0], 1);
  t.offset_bytes_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  return t;
}

Tensor Tensor::select(int64_t i) const {
  Tensor t = slice(i, i + 1);
  t.shape_.erase(t.shape_.begin());
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  RLAIF_CHECK(defined(), "Tensor::reshape: undefined tensor");
  Shape out = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      RLAIF_CHECK(infer < 0, "Tensor::reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      RLAIF_CHECK(out[i] >= 0, "Tensor::reshape: negative dimension in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    RLAIF_CHECK(known > 0 && numel_ % known == 0, "Tensor::reshape: cannot reshape ", *this, " to ",
                shape_str(shape));
    out[static_cast<size_t>(infer)] = numel_ / known;
    known *= out[static_cast<size_t>(infer)];
  }
  RLAIF_CHECK(known == numel_, "Tensor::reshape: cannot reshape ", *this, " (", numel_,
              " elements) to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = out;
  return t;
}

void Tensor::copy_from(const Tensor& src) const {
  RLAIF_CHECK(defined() && src.defined(), "Tensor::copy_from: undefined tensor");
  RLAIF_CHECK(src.dtype_ == dtype_ && src.numel_ == numel_, "Tensor::copy_from: cannot copy ", src,
              " into ", *this);
  size_t bytes = nbytes();
  if (bytes == 0) return;
  Device to_dev = device(), from_dev = src.device();
  if (to_dev.is_cpu() && from_dev.is_cpu()) {
    device_memory(DeviceType::cpu).copy_within(raw_data(), src.raw_data(), bytes, to_dev);
  } else if (from_dev.is_cpu()) {
    device_memory(to_dev.type).copy_from_host(raw_data(), src.raw_data(), bytes, to_dev);
  } else if (to_dev.is_cpu()) {
    device_memory(from_dev.type).copy_to_host(raw_data(), src.raw_data(), bytes, from_dev);
  } else {
    RLAIF_CHECK(to_dev == from_dev, "Tensor::copy_from: direct copy between ", from_dev, " and ",
                to_dev, " is not supported; go through the host");
    device_memory(to_dev.type).copy_within(raw_data(), src.raw_data(), bytes, to_dev);
  }
}

Tensor Tensor::to(Device device) const {
  Tensor out = empty(shape_, dtype_, device);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::clone() const {
  return to(device());
}

float Tensor::item() const {
  RLAIF_CHECK(numel_ == 1, "Tensor::item: needs exactly one element, got ", *this);
  Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  const void* p = host.raw_data();
  switch (dtype_) {
    case DType::f32:
      return *static_cast<const float*>(p);
    case DType::bf16:
      return bf16_to_float(*static_cast<const bf16_t*>(p));
    case DType::f16:
      return f16_to_float(*static_cast<const f16_t*>(p));
    case DType::i32:
      return static_cast<float>(*static_cast<const int32_t*>(p));
    case DType::i64:
      return static_cast<float>(*static_cast<const int64_t*>(p));
    case DType::u8:
      return static_cast<float>(*static_cast<const uint8_t*>(p));
  }
  return 0.0f;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device().str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}
std::ostream& operator<<(std::ostream& os, const Shape& s) {
  return os << shape_str(s);
}

}  // namespace rlaif

// Tensor handles, views, copies and the messages of their errors.
#include <gtest/gtest.h>

#include <cstdint>

#include "runtime/allocator.h"
#include "runtime/tensor.h"
#include "tests/error_of.h"

namespace rlaif {
namespace {

using test::error_of;

TEST(Tensor, EmptyHasShapeDtypeAndAlignment) {
  Tensor t = Tensor::empty({2, 3, 5}, DType::bf16);
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 30);
  EXPECT_EQ(t.nbytes(), 60u);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(-1), 5);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kCpuAlignment, 0u);
  EXPECT_EQ(t.str(), "bf16[2, 3, 5] cpu");
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, ZerosAndFromVector) {
  Tensor z = Tensor::zeros({4, 3}, DType::i64);
  for (int64_t v : z.to_vector<int64_t>()) EXPECT_EQ(v, 0);
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_FLOAT_EQ(Tensor::scalar(2.5f).item(), 2.5f);
  EXPECT_EQ(Tensor::scalar(2.5f).dim(), 0);
}

TEST(Tensor, SliceAndSelectShareStorage) {
  Tensor t = Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {4, 3});
  Tensor rows = t.slice(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(rows.to_vector<int32_t>(), (std::vector<int32_t>{3, 4, 5, 6, 7, 8}));
  EXPECT_TRUE(rows.same_storage(t));
  rows.data<int32_t>()[0] = 42;  // writes through the view
  EXPECT_EQ(t.to_vector<int32_t>()[3], 42);
  Tensor row = t.select(3);
  EXPECT_EQ(row.shape(), (Shape{3}));
  EXPECT_EQ(row.to_vector<int32_t>(), (std::vector<int32_t>{9, 10, 11}));
  EXPECT_EQ(t.slice(2, 2).numel(), 0);
  // A slice of a slice keeps the right offset.
  EXPECT_EQ(t.slice(1, 4).slice(1, 2).to_vector<int32_t>(), (std::vector<int32_t>{6, 7, 8}));
}

TEST(Tensor, ReshapeInfersOneDimension) {
  Tensor t = Tensor::zeros({2, 6}, DType::f32);
  EXPECT_EQ(t.reshape({3, -1}).shape(), (Shape{3, 4}));
  EXPECT_EQ(t.reshape({12}).shape(), (Shape{12}));
  EXPECT_TRUE(t.reshape({4, 3}).same_storage(t));
  std::string msg = error_of([&] { t.reshape({5, -1}); });
  EXPECT_NE(msg.find("f32[2, 6] cpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5, -1]"), std::string::npos) << msg;
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({5, 2}), Error);
}

TEST(Tensor, ErrorsNameTheOperationAndTensor) {
  Tensor t = Tensor::zeros({2, 3}, DType::f32);
  std::string msg = error_of([&] { t.data<int32_t>(); });
  EXPECT_NE(msg.find("data<T>()"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32[2, 3] cpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("i32"), std::string::npos) << msg;
  msg = error_of([&] { t.slice(1, 3); });
  EXPECT_NE(msg.find("slice"), std::string::npos) << msg;
  EXPECT_THROW(t.size(2), Error);
  EXPECT_THROW(Tensor::empty({2, -1}, DType::f32), Error);
  EXPECT_THROW(Tensor().raw_data(), Error);
  EXPECT_THROW(Tensor::zeros({2}, DType::f32).item(), Error);
}

TEST(Tensor, CloneCopiesAndCopyFromChecksShapes) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3});
  Tensor b = a.clone();
  EXPECT_FALSE(b.same_storage(a));
  b.data<float>()[0] = 7;
  EXPECT_EQ(a.to_vector<float>()[0], 1);
  Tensor c = Tensor::zeros({3}, DType::f32);
  c.copy_from(a);
  EXPECT_EQ(c.to_vector<float>(), a.to_vector<float>());
  EXPECT_THROW(c.copy_from(Tensor::zeros({4}, DType::f32)), Error);
  EXPECT_THROW(c.copy_from(Tensor::zeros({3}, DType::i32)), Error);
}

TEST(Tensor, StorageIsReferenceCountedAndFreed) {
  size_t before = cpu_bytes_in_use();
  {
    Tensor a = Tensor::empty({1000}, DType::f32);
    EXPECT_EQ(cpu_bytes_in_use(), before + 4000);
    Tensor view = a.slice(10, 20);
    EXPECT_EQ(a.use_count(), 2);
    a = Tensor();
    EXPECT_EQ(cpu_bytes_in_use(), before + 4000);  // the view keeps the storage alive
    EXPECT_EQ(view.to_vector<float>().size(), 10u);
  }
  EXPECT_EQ(cpu_bytes_in_use(), before);
}

TEST(Tensor, WrapKeepsExternalMemoryAlive) {
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  Tensor t = Tensor::wrap(buffer->data(), {2, 2}, DType::f32, Device::cpu(), buffer);
  std::weak_ptr<std::vector<float>> watch = buffer;
  buffer.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  t = Tensor();
  EXPECT_TRUE(watch.expired());
}

// Without a keep-alive the memory is still the caller's: the tensor must not free it (a stack
// array here: freeing it would crash, and ASan reports it).
TEST(Tensor, WrapWithoutKeepAliveNeverFreesTheCallersMemory) {
  float local[3] = {1, 2, 3};
  const int64_t before = cpu_bytes_in_use();
  {
    Tensor t = Tensor::wrap(local, {3}, DType::f32, Device::cpu(), nullptr);
    EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  }
  EXPECT_EQ(cpu_bytes_in_use(), before);
  EXPECT_EQ(local[2], 3.0f);
}

TEST(Tensor, ItemConvertsEveryDtype) {
  Tensor h = Tensor::empty({1}, DType::bf16);
  h.data<bf16_t>()[0] = float_to_bf16(1.5f);
  EXPECT_EQ(h.item(), 1.5f);
  Tensor u = Tensor::from_vector<uint8_t>({200}, {1});
  EXPECT_EQ(u.item(), 200.0f);
}

TEST(DeviceAndDtype, GroupByDeviceKeepsFirstAppearanceAndIndexOrder) {
  const Device c = Device::cpu(), g0 = Device::cuda(0), g1 = Device::cuda(1);
  using Groups = std::vector<std::vector<size_t>>;
  EXPECT_EQ(group_by_device({}), Groups{});
  EXPECT_EQ(group_by_device({c, c, c}), (Groups{{0, 1, 2}}));
  EXPECT_EQ(group_by_device({g1, c, g1, g0, c, g0}), (Groups{{0, 2}, {1, 4}, {3, 5}}));
}

TEST(DeviceAndDtype, ParseAndPrint) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(2).str(), "cuda:2");
  EXPECT_THROW(parse_device("cuda:"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
  EXPECT_THROW(parse_device("tpu"), Error);
  for (DType d : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8}) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d);
  }
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_THROW(parse_dtype("f64"), Error);
  EXPECT_TRUE(is_floating(DType::f16));
  EXPECT_FALSE(is_floating(DType::i32));
}

TEST(DeviceMemory, CudaWithoutBackendIsAClearError) {
  // runtime_tests links the runtime alone, so no CUDA memory manager is ever registered here.
  std::string msg = error_of([] { device_memory(DeviceType::cuda); });
  EXPECT_NE(msg.find("no CUDA memory manager"), std::string::npos) << msg;
  EXPECT_THROW(Tensor::empty({2}, DType::f32, Device::cuda(0)), Error);
}

}  // namespace
}  // namespace rlaif

// The device registry (kernels/device_registry.h): what is built in, what registration refuses,
// and how an absent device type is reported.
#include "kernels/device_registry.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/device_communicator.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DeviceRegistry, CpuIsRegisteredFirstWithF32Only) {
  const std::vector<DeviceTypeRegistration> types = registered_device_types();
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types[0].type, DeviceType::cpu);
  EXPECT_EQ(types[0].memory, &device_memory(DeviceType::cpu));
  EXPECT_EQ(types[0].float_dtypes, std::vector<DType>{DType::f32});
  EXPECT_EQ(types[0].make_backend(0), &backend_for(Device::cpu()));
  EXPECT_EQ(&types[0].communicator(Device::cpu()), &world_communicator());
  for (const DeviceTypeRegistration& type : types) {
    EXPECT_TRUE(backend_available(type.type)) << device_type_name(type.type);
  }
}

TEST(DeviceRegistry, RegistrationRefusesCpuAndIncompleteEntries) {
  DeviceTypeRegistration cpu;
  cpu.type = DeviceType::cpu;
  EXPECT_NE(error_of([&] { register_device_type(cpu); }).find("cpu is built in"),
            std::string::npos);
  DeviceTypeRegistration bare;
  bare.type = DeviceType::cuda;  // no memory, no backend factory: refused before anything changes
  EXPECT_NE(error_of([&] {
              register_device_type(bare);
            }).find("a memory manager and a backend factory are required"),
            std::string::npos);
  DeviceTypeRegistration no_f32 = registered_device_types()[0];
  no_f32.type = DeviceType::cuda;
  no_f32.float_dtypes = {DType::bf16};
  EXPECT_NE(error_of([&] { register_device_type(no_f32); }).find("must start with f32"),
            std::string::npos);
}

TEST(DeviceRegistry, AnUnregisteredTypeIsNamedWhereverItIsAskedFor) {
  if (backend_available(DeviceType::cuda)) GTEST_SKIP() << "the CUDA backend is compiled in";
  for (const std::string& msg : {error_of([] { device_type_registration(DeviceType::cuda); }),
                                 error_of([] { backend_for(Device::cuda(0)); }),
                                 error_of([] { communicator_for(Device::cuda(0)); }), error_of([] {
                                   Tensor::empty({2}, DType::f32, Device::cuda(0));
                                 })}) {
    EXPECT_TRUE(msg.find("without the CUDA backend") != std::string::npos ||
                msg.find("no CUDA memory manager") != std::string::npos)
        << msg;
  }
}

TEST(DeviceRegistry, DevicesParseAndPrintByTypeName) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(3).str(), "cuda:3");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  for (const char* bad : {"cuda:", "cuda:-1", "cuda:1x", "cudax", "gpu"}) {
    EXPECT_NE(error_of([&] { parse_device(bad); }).find("(expected cpu, cuda or cuda:N)"),
              std::string::npos)
        << bad;
  }
}

}  // namespace
}  // namespace rlaif

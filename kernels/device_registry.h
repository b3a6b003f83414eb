// The device types this binary runs on, each registered by name with what a port provides: its
// memory (runtime/allocator.h), its backend (kernels/backend.h) and its communicator
// (runtime/communicator.h). backend_for, device_memory and communicator_for read this registry;
// the conformance suite runs every registered backend in every float dtype it declares, and
// `rlaif version` lists them. docs/PORTING.md walks through a registration.
//
// Registration is explicit: registered_device_types() installs the built-in entries on first
// use, "cpu" always and "cuda" when the CUDA backend is compiled in (device_registry.cpp). A
// static initialiser in a backend's own static library would be dropped by the linker, since
// nothing refers to its object file.
#pragma once

#include <string>
#include <vector>

#include "kernels/backend.h"
#include "runtime/allocator.h"
#include "runtime/communicator.h"
#include "runtime/device.h"

namespace rlaif {

struct DeviceTypeRegistration {
  DeviceType type = DeviceType::cpu;  // its name is device_type_name(type)
  // Allocation, zeroing and host copies for every device of the type; lives until exit.
  DeviceMemory* memory = nullptr;
  // The backend of device `index`, made on its first backend_for and kept until exit; throws
  // Error when that device cannot be used (no driver, no such device).
  Backend* (*make_backend)(int index) = nullptr;
  // Collectives over tensors on `device`, across the ranks of world_communicator(). nullptr: the
  // type has none, and a job of several ranks cannot train on it (one rank runs, every
  // collective being the identity).
  Communicator& (*communicator)(Device device) = nullptr;
  // The float dtypes its primitives accept (f32 first); the conformance suite checks each.
  std::vector<DType> float_dtypes = {DType::f32};
};

// Adds a device type (any type but cpu, which is built in), or replaces its earlier registration,
// and installs its memory manager. Register before making the type's first tensor.
void register_device_type(const DeviceTypeRegistration& registration);
// Every registered device type, in DeviceType order ("cpu" first).
std::vector<DeviceTypeRegistration> registered_device_types();
// The registration of `type`; Error naming the type when it has none (this binary was built
// without that backend).
DeviceTypeRegistration device_type_registration(DeviceType type);

}  // namespace rlaif

#include "kernels/device_communicator.h"

#include "kernels/device_registry.h"

namespace rlaif {

Communicator& communicator_for(Device device) {
  if (device.type == DeviceType::cpu) return world_communicator();
  const DeviceTypeRegistration type = device_type_registration(device.type);
  if (type.communicator != nullptr) return type.communicator(device);
  Communicator& world = world_communicator();
  RLAIF_CHECK(world.size() == 1, "communicator_for(", device.str(), "): ", world.size(),
              " ranks train on ", device_type_name(device.type),
              ", whose registration has no communicator (kernels/device_registry.h)");
  return world;
}

}  // namespace rlaif

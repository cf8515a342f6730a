#pragma once
// The clouds an image is registered with: one entry per IaaS, all with the same shape.
// The CLI, the manifest's registrations and the cartridge JSON go through this table and
// never branch on an IaaS name; adding a cloud is one file (<cloud>.cpp with its steps:
// find an earlier registration, upload, register, delete what a failure leaves) and one
// entry in provider.cpp.

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/manifest.hpp"
#include "net/credentials.hpp"
#include "register/image_info.hpp"

namespace bi::cloud {

struct Provider {
  std::string name; // the cartridge's iaas type, --to, the key under the manifest's registrations
  // Registers `image` in `region` ("" = the credentials' default region): reuses an earlier
  // registration of the same bytes, else uploads and registers; what a failure leaves
  // half-made is deleted. `region` is set to the region used.
  std::function<Expected<RegisterResult>(const BuiltImage& image, std::string& region, const Env& env,
                                         const RegisterEvents& events)>
      register_image;
  // The cloud's own figures of a result: added to its --json object and its result line.
  std::function<void(const RegisterResult&, nlohmann::json&)> result_fields;
  std::function<std::string(const RegisterResult&)> result_detail;
};

const std::vector<Provider>& providers();
const Provider* find_provider(const std::string& name);
// "openstack or ec2" / "openstack|ec2": the names for messages.
std::string provider_names(const std::string& separator);

} // namespace bi::cloud

#pragma once
// The clouds an image is registered with: one entry per IaaS, all with the same shape.
// The CLI, the manifest's registrations and the cartridge JSON go through this table and
// never branch on an IaaS name. Every cloud implements the same four operations on a
// CloudSession (describe, upload, register, delete); the flow that joins them is written
// once, in register_image(). Adding a cloud is one file (<cloud>.cpp with its session) and
// one entry in provider.cpp.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/manifest.hpp"
#include "net/credentials.hpp"
#include "register/image_info.hpp"

namespace bi::registration {

// An authenticated session with one region of one cloud.
class CloudSession {
public:
  virtual ~CloudSession() = default;
  CloudSession() = default;
  CloudSession(const CloudSession&) = delete;
  CloudSession& operator=(const CloudSession&) = delete;

  // Where requests go (no credentials), for the result.
  virtual std::string endpoint() const = 0;
  // describe: the id of an earlier registration of these exact bytes, or "". Leftovers of
  // interrupted runs that cannot be reused are removed here.
  virtual Expected<std::string> find_registered(const BuiltImage& image, const RegisterEvents& events) = 0;
  // upload: the image's bytes, to where register_upload() finds them; the upload's id (a
  // Glance image, an EBS snapshot). A failed upload leaves nothing behind.
  virtual Expected<std::string> upload(const BuiltImage& image, const RegisterEvents& events,
                                       RegisterResult& result) = 0;
  // register: makes the upload a bootable image and checks it; the image's id.
  virtual Expected<std::string> register_upload(const BuiltImage& image, const std::string& upload_id,
                                                RegisterResult& result) = 0;
  // delete: what an upload left when its registration failed (best effort, logged).
  // A cloud where the upload stays reusable (a completed EBS snapshot) keeps it and says so.
  virtual void remove_upload(const std::string& upload_id) = 0;
};

struct Provider {
  std::string name;       // the cartridge's iaas type, --to, the key under the manifest's registrations
  std::string image_noun; // what the cloud calls a registered image, in messages: "ami"
  // Authenticates for `region` ("" = the credentials' default region; set to the region used).
  std::function<Expected<std::unique_ptr<CloudSession>>(std::string& region, const net::Env& env)> connect;
  // The cloud's own figures of a result: added to its --json object and its result line.
  std::function<void(const RegisterResult&, nlohmann::json&)> result_fields;
  std::function<std::string(const RegisterResult&)> result_detail;
};

const std::vector<Provider>& providers();
const Provider* find_provider(const std::string& name);
// "openstack or ec2" / "openstack|ec2": the names for messages.
std::string provider_names(const std::string& separator);

// The one registration flow: reuse an earlier registration of the same bytes, else upload
// and register; an upload whose registration fails is handed to remove_upload().
Expected<RegisterResult> register_image(const Provider& provider, const BuiltImage& image, std::string& region,
                                        const net::Env& env, const RegisterEvents& events);

} // namespace bi::registration

// Reading NetDef files (binary .pb, or protobuf text for .pbtxt/.prototxt/.txt) into NetSpecs.
#pragma once

#include <string>

#include "net_spec.h"

namespace c2rt {

// Throws ProtobufError naming `path` when the file cannot be read or is not a caffe2.NetDef.
NetSpec load_net(const std::string& path);

// Binary NetDef bytes -> NetSpec; `where` names the source in error messages.
NetSpec parse_net(const std::string& bytes, const std::string& where);

}  // namespace c2rt

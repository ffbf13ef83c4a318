#include "proto_io.h"

#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

#include "caffe2.pb.h"
#include "errors.h"

namespace c2rt {
namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_text_path(const std::string& path) {
  return has_suffix(path, ".pbtxt") || has_suffix(path, ".prototxt") || has_suffix(path, ".txt");
}

// Argument -> Value, exactly one value field set (none: an empty list), as arguments.py decodes.
Value decode_argument(const caffe2::Argument& arg, const std::string& where) {
  std::vector<std::string> set;
  if (arg.has_f()) set.push_back("f");
  if (arg.has_i()) set.push_back("i");
  if (arg.has_s()) set.push_back("s");
  if (arg.has_t()) set.push_back("t");
  if (arg.has_n()) set.push_back("n");
  if (arg.floats_size()) set.push_back("floats");
  if (arg.ints_size()) set.push_back("ints");
  if (arg.strings_size()) set.push_back("strings");
  if (arg.tensors_size()) set.push_back("tensors");
  if (arg.nets_size()) set.push_back("nets");
  if (arg.qtensors_size()) set.push_back("qtensors");
  if (set.size() > 1) {
    throw OperatorArgumentError(where + ": argument '" + arg.name() + "' sets fields " + names_str(set) +
                                ", expected exactly one");
  }
  if (set.empty()) return Value::of_ints({});
  const std::string& field = set[0];
  if (field == "f") return Value::of_float(arg.f());
  if (field == "i") return Value::of_int(arg.i());
  if (field == "s") return Value::of_string(arg.s());
  if (field == "floats") return Value::of_floats(std::vector<float>(arg.floats().begin(), arg.floats().end()));
  if (field == "ints") return Value::of_ints(std::vector<int64_t>(arg.ints().begin(), arg.ints().end()));
  if (field == "strings") {
    return Value::of_strings(std::vector<std::string>(arg.strings().begin(), arg.strings().end()));
  }
  Value unsupported;
  unsupported.kind = Value::Kind::Unsupported;
  unsupported.s = field;
  return unsupported;
}

NamedValues decode_arguments(const google::protobuf::RepeatedPtrField<caffe2::Argument>& args,
                             const std::string& where) {
  NamedValues out;
  for (const auto& arg : args) {
    for (const auto& [name, value] : out) {
      if (name == arg.name()) throw OperatorArgumentError(where + ": argument '" + name + "' given twice");
    }
    out.emplace_back(arg.name(), decode_argument(arg, where));
  }
  return out;
}

// Whether `text` is UTF-8 without control characters: names end up in messages and in the tools'
// one `error:` line, where a byte-flipped file must not break the line or the encoding.
bool is_clean_text(const std::string& text) {
  for (size_t k = 0; k < text.size();) {
    const auto c = static_cast<unsigned char>(text[k]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return false;
      ++k;
      continue;
    }
    const size_t extra = (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 0;
    if (extra == 0 || k + extra >= text.size()) return false;
    for (size_t j = 1; j <= extra; ++j) {
      if ((static_cast<unsigned char>(text[k + j]) >> 6) != 0x2) return false;
    }
    k += extra + 1;
  }
  return true;
}

// ProtobufError naming the file and the field unless every name in `names` is clean text.
template <typename Names>
void check_names(const std::string& where, const std::string& field, const Names& names) {
  for (const std::string& name : names) {
    if (!is_clean_text(name)) {
      throw ProtobufError(where + ": " + field + " " + quoted(name) + ", expected UTF-8 text without control characters");
    }
  }
}

NetSpec to_spec(const caffe2::NetDef& net, const std::string& path) {
  check_names(path, "net name", std::vector<std::string>{net.name()});
  check_names(path, "external input", net.external_input());
  check_names(path, "external output", net.external_output());
  for (int index = 0; index < net.op_size(); ++index) {
    const caffe2::OperatorDef& op = net.op(index);
    const std::string where = path + ": op #" + std::to_string(index);
    check_names(where, "type", std::vector<std::string>{op.type()});
    check_names(where, "name", std::vector<std::string>{op.name()});
    check_names(where, "blob", op.input());
    check_names(where, "blob", op.output());
    for (const caffe2::Argument& arg : op.arg()) check_names(where, "argument name", std::vector<std::string>{arg.name()});
  }
  for (const caffe2::Argument& arg : net.arg()) check_names(path, "net argument name", std::vector<std::string>{arg.name()});
  NetSpec spec;
  spec.name = net.name();
  const std::string net_where = "NetDef '" + net.name() + "'";
  spec.args = decode_arguments(net.arg(), net_where);
  spec.external_input.assign(net.external_input().begin(), net.external_input().end());
  spec.external_output.assign(net.external_output().begin(), net.external_output().end());
  spec.ops.reserve(net.op_size());
  for (int index = 0; index < net.op_size(); ++index) {
    const caffe2::OperatorDef& op = net.op(index);
    OperatorSpec op_spec;
    op_spec.type = op.type();
    op_spec.name = op.name();
    op_spec.inputs.assign(op.input().begin(), op.input().end());
    op_spec.outputs.assign(op.output().begin(), op.output().end());
    const std::string where = "net '" + net.name() + "' op #" + std::to_string(index) + " '" + op.type() + "'";
    op_spec.args = decode_arguments(op.arg(), where);
    if (op.has_device_option()) op_spec.device_type = op.device_option().device_type();
    spec.ops.push_back(std::move(op_spec));
  }
  return spec;
}

}  // namespace

NetSpec parse_net(const std::string& bytes, const std::string& where) {
  caffe2::NetDef net;
  if (!net.ParsePartialFromString(bytes)) {
    throw ProtobufError(where + ": not a valid binary caffe2.NetDef (" + std::to_string(bytes.size()) + " bytes)");
  }
  if (!net.IsInitialized()) {
    throw ProtobufError(where + ": not a valid binary caffe2.NetDef: required fields missing: " +
                        net.InitializationErrorString());
  }
  return to_spec(net, where);
}

NetSpec load_net(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ProtobufError(path + ": cannot open file, expected a caffe2.NetDef (.pb or .pbtxt)");
  std::ostringstream buffer;
  buffer << file.rdbuf();
  const std::string data = buffer.str();
  if (!is_text_path(path)) return parse_net(data, path);
  caffe2::NetDef net;
  if (!google::protobuf::TextFormat::ParseFromString(data, &net)) {
    throw ProtobufError(path + ": not a valid text caffe2.NetDef");
  }
  return to_spec(net, path);
}

}  // namespace c2rt

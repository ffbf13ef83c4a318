// A NetDef as plain C++ values: what the runtime needs from caffe2.proto, without protobuf or torch
// types (the protobuf code stays in proto_io.cpp, apart from torch's bundled protobuf headers).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace c2rt {

// One argument value. Decoded from an Argument message (i -> Int, f -> Float, s -> String, repeated
// fields -> lists; an Argument with no value is an empty Ints list), or produced by argument binding
// (Bool, None). Lists are shared: an init net's `values` may hold millions of floats.
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Ints, Floats, Strings, Unsupported };

  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // String payload; for Unsupported, the protobuf field name (t, n, tensors, ...)
  std::shared_ptr<const std::vector<int64_t>> ints;
  std::shared_ptr<const std::vector<float>> floats;
  std::shared_ptr<const std::vector<std::string>> strings;

  static Value none() { return Value{}; }
  static Value of_bool(bool v);
  static Value of_int(int64_t v);
  static Value of_float(double v);
  static Value of_string(std::string v);
  static Value of_ints(std::vector<int64_t> v);
  static Value of_floats(std::vector<float> v);
  static Value of_strings(std::vector<std::string> v);

  bool is_none() const { return kind == Kind::None; }
  bool is_list() const { return kind == Kind::Ints || kind == Kind::Floats || kind == Kind::Strings; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float; }
  size_t list_size() const;
  // Python-like repr for error messages: 3, 0.5, 'NCHW', [1, 2], True, None.
  std::string repr() const;
};

using NamedValues = std::vector<std::pair<std::string, Value>>;

struct OperatorSpec {
  std::string type;
  std::string name;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  NamedValues args;
  std::optional<int> device_type;  // DeviceOption.device_type when the op sets one (0 CPU, 1 CUDA)
};

struct NetSpec {
  std::string name;
  std::vector<OperatorSpec> ops;
  NamedValues args;  // metadata, e.g. size_divisibility
  std::vector<std::string> external_input;
  std::vector<std::string> external_output;

  // The net-level argument `name`, or nullopt.
  std::optional<Value> arg(const std::string& name) const;
};

}  // namespace c2rt

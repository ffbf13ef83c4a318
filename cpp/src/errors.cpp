#include "errors.h"

#include <sstream>

namespace c2rt {

std::string error_class_name(const std::exception& error) {
  if (dynamic_cast<const ProtobufError*>(&error)) return "ProtobufError";
  if (dynamic_cast<const UnknownOperatorError*>(&error)) return "UnknownOperatorError";
  if (dynamic_cast<const OperatorArgumentError*>(&error)) return "OperatorArgumentError";
  if (dynamic_cast<const OperatorInputError*>(&error)) return "OperatorInputError";
  if (dynamic_cast<const Caffe2Error*>(&error)) return "Caffe2Error";
  return "";
}

std::string shape_str(const std::vector<int64_t>& dims) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < dims.size(); ++i) out << (i ? ", " : "") << dims[i];
  out << (dims.size() == 1 ? ",)" : ")");
  return out.str();
}

std::string quoted(const std::string& text) {
  constexpr size_t kMaxShown = 200;
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t k = 0; k < text.size() && k < kMaxShown; ++k) {
    const auto c = static_cast<unsigned char>(text[k]);
    if (c == '\n') out += "\\n";
    else if (c == '\\' || c == '\'') out += std::string("\\") + static_cast<char>(c);
    else if (c < 0x20 || c >= 0x7f) out += std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
    else out += static_cast<char>(c);
  }
  out += "'";
  if (text.size() > kMaxShown) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string names_str(const std::vector<std::string>& names) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << quoted(names[i]);
  out << "]";
  return out.str();
}

std::string ints_str(const std::vector<int64_t>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

}  // namespace c2rt

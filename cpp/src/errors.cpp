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

std::string names_str(const std::vector<std::string>& names) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << "'" << names[i] << "'";
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

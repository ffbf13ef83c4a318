#include "net_spec.h"

#include <sstream>

#include "errors.h"

namespace c2rt {

Value Value::of_bool(bool v) {
  Value out;
  out.kind = Kind::Bool;
  out.b = v;
  out.i = v ? 1 : 0;
  return out;
}

Value Value::of_int(int64_t v) {
  Value out;
  out.kind = Kind::Int;
  out.i = v;
  return out;
}

Value Value::of_float(double v) {
  Value out;
  out.kind = Kind::Float;
  out.f = v;
  return out;
}

Value Value::of_string(std::string v) {
  Value out;
  out.kind = Kind::String;
  out.s = std::move(v);
  return out;
}

Value Value::of_ints(std::vector<int64_t> v) {
  Value out;
  out.kind = Kind::Ints;
  out.ints = std::make_shared<const std::vector<int64_t>>(std::move(v));
  return out;
}

Value Value::of_floats(std::vector<float> v) {
  Value out;
  out.kind = Kind::Floats;
  out.floats = std::make_shared<const std::vector<float>>(std::move(v));
  return out;
}

Value Value::of_strings(std::vector<std::string> v) {
  Value out;
  out.kind = Kind::Strings;
  out.strings = std::make_shared<const std::vector<std::string>>(std::move(v));
  return out;
}

size_t Value::list_size() const {
  switch (kind) {
    case Kind::Ints: return ints->size();
    case Kind::Floats: return floats->size();
    case Kind::Strings: return strings->size();
    default: return 0;
  }
}

namespace {

constexpr size_t kMaxReprItems = 8;

template <typename T, typename F>
void list_repr(std::ostringstream& out, const std::vector<T>& items, F item) {
  out << "[";
  for (size_t k = 0; k < items.size() && k < kMaxReprItems; ++k) {
    out << (k ? ", " : "");
    item(items[k]);
  }
  if (items.size() > kMaxReprItems) out << ", ... (" << items.size() << " items)";
  out << "]";
}

}  // namespace

std::string Value::repr() const {
  std::ostringstream out;
  switch (kind) {
    case Kind::None: out << "None"; break;
    case Kind::Bool: out << (b ? "True" : "False"); break;
    case Kind::Int: out << i; break;
    case Kind::Float: out << f; break;
    case Kind::String: out << quoted(s); break;
    case Kind::Ints: list_repr(out, *ints, [&](int64_t v) { out << v; }); break;
    case Kind::Floats: list_repr(out, *floats, [&](float v) { out << v; }); break;
    case Kind::Strings: list_repr(out, *strings, [&](const std::string& v) { out << quoted(v); }); break;
    case Kind::Unsupported: out << "<" << s << " field>"; break;
  }
  return out.str();
}

std::optional<Value> NetSpec::arg(const std::string& name) const {
  for (const auto& [arg_name, value] : args) {
    if (arg_name == name) return value;
  }
  return std::nullopt;
}

}  // namespace c2rt

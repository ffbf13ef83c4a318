#include "arguments.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "errors.h"

namespace c2rt {
namespace {

ArgSpec make(std::string name, ArgType type, std::optional<Value> default_value) {
  ArgSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(default_value);
  return spec;
}

const char* type_name(ArgType type) {
  switch (type) {
    case ArgType::Bool: return "bool";
    case ArgType::Int: return "int";
    case ArgType::Float: return "float";
    case ArgType::String: return "str";
    case ArgType::List: return "list";
    default: return "object";
  }
}

ArgCheck ints_at_least(std::optional<int64_t> min_value) {
  return [min_value](const Value& v) {
    if (v.is_none()) return true;
    if (v.kind != Value::Kind::Ints) return false;
    return !min_value || std::all_of(v.ints->begin(), v.ints->end(), [&](int64_t x) { return x >= *min_value; });
  };
}

std::string ints_expected(std::optional<int64_t> min_value) {
  return min_value ? "a list of ints >= " + std::to_string(*min_value) : "a list of ints";
}

// Python's _coerce: the given value as the declared type, or nullopt when it does not convert.
std::optional<Value> coerce(const ArgSpec& spec, const Value& v) {
  switch (spec.type) {
    case ArgType::Bool:
      if (v.kind == Value::Kind::Bool) return v;
      if (v.kind == Value::Kind::Int && (v.i == 0 || v.i == 1)) return Value::of_bool(v.i == 1);
      return std::nullopt;
    case ArgType::Int:
      if (v.kind == Value::Kind::Int) return v;
      if (v.kind == Value::Kind::Float && std::isfinite(v.f) && std::floor(v.f) == v.f) {
        return Value::of_int(static_cast<int64_t>(v.f));
      }
      return std::nullopt;
    case ArgType::Float:
      if (v.kind == Value::Kind::Float) return v;
      if (v.kind == Value::Kind::Int) return Value::of_float(static_cast<double>(v.i));
      return std::nullopt;
    case ArgType::String:
      if (v.kind == Value::Kind::String) return v;
      return std::nullopt;
    case ArgType::List:
      if (v.is_list()) return v;
      return std::nullopt;
    default:
      return v;
  }
}

}  // namespace

ArgSpec ArgSpec::where(ArgCheck check, std::string expected_form) const {
  ArgSpec out = *this;
  out.valid = std::move(check);
  out.expected = std::move(expected_form);
  return out;
}

ArgSpec Bool(std::string name, bool default_value) {
  return make(std::move(name), ArgType::Bool, Value::of_bool(default_value));
}
ArgSpec Int(std::string name, int64_t default_value) {
  return make(std::move(name), ArgType::Int, Value::of_int(default_value));
}
ArgSpec IntOrNone(std::string name) { return make(std::move(name), ArgType::Int, Value::none()); }
ArgSpec RequiredInt(std::string name) { return make(std::move(name), ArgType::Int, std::nullopt); }
ArgSpec Float(std::string name, double default_value) {
  return make(std::move(name), ArgType::Float, Value::of_float(default_value));
}
ArgSpec Str(std::string name, std::string default_value) {
  return make(std::move(name), ArgType::String, Value::of_string(std::move(default_value)));
}
ArgSpec StrOrNone(std::string name) { return make(std::move(name), ArgType::String, Value::none()); }
ArgSpec RequiredStr(std::string name) { return make(std::move(name), ArgType::String, std::nullopt); }

ArgSpec IntList(std::string name, std::optional<std::vector<int64_t>> default_value, std::optional<int64_t> min_value) {
  std::optional<Value> def = default_value ? std::optional<Value>(Value::of_ints(*default_value)) : std::nullopt;
  return make(std::move(name), ArgType::List, def).where(ints_at_least(min_value), ints_expected(min_value));
}
ArgSpec IntListOrNone(std::string name, std::optional<int64_t> min_value) {
  return make(std::move(name), ArgType::List, Value::none()).where(ints_at_least(min_value), ints_expected(min_value));
}
ArgSpec RequiredIntList(std::string name, std::optional<int64_t> min_value) {
  return IntList(std::move(name), std::nullopt, min_value);
}
ArgSpec NumberList(std::string name, std::vector<float> default_value) {
  return make(std::move(name), ArgType::List, Value::of_floats(std::move(default_value)))
      .where([](const Value& v) { return v.kind == Value::Kind::Ints || v.kind == Value::Kind::Floats; },
             "a list of numbers");
}
ArgSpec RequiredList(std::string name) { return make(std::move(name), ArgType::List, std::nullopt); }
ArgSpec Number(std::string name, Value default_value) {
  return make(std::move(name), ArgType::Number, std::move(default_value))
      .where([](const Value& v) { return v.is_none() || v.is_number(); }, "a number");
}
ArgSpec AnyValue(std::string name, Value default_value) {
  return make(std::move(name), ArgType::Any, std::move(default_value));
}

ArgCheck at_least(int64_t lo) {
  return [lo](const Value& v) { return v.is_none() || v.i >= lo; };
}
ArgCheck positive() {
  return [](const Value& v) { return v.is_none() || v.f > 0; };
}
ArgCheck one_of(std::vector<std::string> options) {
  return [options = std::move(options)](const Value& v) {
    return v.is_none() || std::find(options.begin(), options.end(), v.s) != options.end();
  };
}
ArgCheck equals_int(int64_t expected) {
  return [expected](const Value& v) { return v.is_none() || v.i == expected; };
}
ArgCheck is_true() {
  return [](const Value& v) { return v.b; };
}
ArgCheck list_of_size(size_t n) {
  return [n](const Value& v) { return (v.kind == Value::Kind::Ints || v.kind == Value::Kind::Floats) && v.list_size() == n; };
}

const Value& BoundArgs::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error("BoundArgs: argument '" + name + "' was not declared by the op");
  return it->second;
}

bool BoundArgs::b(const std::string& name) const { return value(name).b; }
int64_t BoundArgs::i(const std::string& name) const { return value(name).i; }
double BoundArgs::f(const std::string& name) const {
  const Value& v = value(name);
  return v.kind == Value::Kind::Int ? static_cast<double>(v.i) : v.f;
}
const std::string& BoundArgs::s(const std::string& name) const { return value(name).s; }

std::vector<int64_t> BoundArgs::ints(const std::string& name) const {
  const Value& v = value(name);
  if (v.kind == Value::Kind::Ints) return *v.ints;
  return {};
}

std::vector<double> BoundArgs::numbers(const std::string& name) const {
  const Value& v = value(name);
  if (v.kind == Value::Kind::Ints) return std::vector<double>(v.ints->begin(), v.ints->end());
  if (v.kind == Value::Kind::Floats) return std::vector<double>(v.floats->begin(), v.floats->end());
  return {};
}

const std::set<std::string>& common_ignored_args() {
  static const std::set<std::string> names{"order_hint", "exhaustive_search", "ws_nbytes_limit", "shared_buffer",
                                           "used_by_backward"};
  return names;
}

BoundArgs bind_args(const std::string& op_type, const std::vector<ArgSpec>& specs,
                    const std::set<std::string>& ignored, const NamedValues& given) {
  std::set<std::string> accepted;
  for (const auto& spec : specs) accepted.insert(spec.name);
  std::set<std::string> extra;
  for (const auto& [name, value] : given) {
    if (!accepted.count(name) && !ignored.count(name) && !common_ignored_args().count(name)) extra.insert(name);
  }
  if (!extra.empty()) {
    throw OperatorArgumentError(op_type + ": unknown argument(s) " + names_str({extra.begin(), extra.end()}) +
                                "; accepts " + names_str({accepted.begin(), accepted.end()}));
  }
  BoundArgs bound;
  for (const auto& spec : specs) {
    const Value* given_value = nullptr;
    for (const auto& [name, value] : given) {
      if (name == spec.name) given_value = &value;
    }
    Value value;
    if (given_value) {
      std::optional<Value> coerced = coerce(spec, *given_value);
      if (!coerced) {
        throw OperatorArgumentError(op_type + ": " + spec.name + "=" + given_value->repr() + ", expected " +
                                    type_name(spec.type) + " (" + spec.expected + ")");
      }
      value = std::move(*coerced);
    } else if (spec.default_value) {
      value = *spec.default_value;
    } else {
      throw OperatorArgumentError(op_type + ": missing required argument '" + spec.name + "'");
    }
    if (spec.valid && !spec.valid(value)) {
      throw OperatorArgumentError(op_type + ": " + spec.name + "=" + value.repr() + ", expected " + spec.expected);
    }
    bound.set(spec.name, std::move(value));
  }
  return bound;
}

}  // namespace c2rt

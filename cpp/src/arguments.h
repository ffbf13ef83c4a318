// OperatorDef arguments: what an op accepts (ArgSpec), and binding decoded values to it
// (mirrors detectron2_export/caffe2/registry.py: Arg, bind_args, and op_args.py helpers).
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "net_spec.h"

namespace c2rt {

// The Python type an argument is coerced to: bool accepts 0/1 ints; int accepts integral floats;
// float accepts ints; List any repeated field; Number keeps an int or float as given; Any passes.
enum class ArgType { Bool, Int, Float, String, List, Number, Any };

using ArgCheck = std::function<bool(const Value&)>;

struct ArgSpec {
  std::string name;
  ArgType type = ArgType::Any;
  std::optional<Value> default_value;  // nullopt: required; Value::none(): "not given" is allowed
  ArgCheck valid;                      // empty: always valid (also applied to the default)
  std::string expected = "a valid value";

  // The same spec with a validity check and the words for its error message.
  ArgSpec where(ArgCheck check, std::string expected_form) const;
};

// Factories. "OrNone" arguments default to None (the op sees has(name) == false).
ArgSpec Bool(std::string name, bool default_value);
ArgSpec Int(std::string name, int64_t default_value);
ArgSpec IntOrNone(std::string name);
ArgSpec RequiredInt(std::string name);
ArgSpec Float(std::string name, double default_value);
ArgSpec Str(std::string name, std::string default_value);
ArgSpec StrOrNone(std::string name);
ArgSpec RequiredStr(std::string name);
// A repeated int argument, each element >= min_value when given.
ArgSpec IntList(std::string name, std::optional<std::vector<int64_t>> default_value,
                std::optional<int64_t> min_value = std::nullopt);
ArgSpec IntListOrNone(std::string name, std::optional<int64_t> min_value = std::nullopt);
ArgSpec RequiredIntList(std::string name, std::optional<int64_t> min_value = std::nullopt);
// A repeated numeric argument (ints or floats).
ArgSpec NumberList(std::string name, std::vector<float> default_value);
ArgSpec RequiredList(std::string name);
// A scalar stored as i or f, kept as given (an int stays an int).
ArgSpec Number(std::string name, Value default_value);
ArgSpec AnyValue(std::string name, Value default_value);

// Checks for ArgSpec::where (None always passes: it is only reachable as a default).
ArgCheck at_least(int64_t lo);
ArgCheck positive();
ArgCheck one_of(std::vector<std::string> options);
ArgCheck equals_int(int64_t expected);
ArgCheck is_true();
ArgCheck list_of_size(size_t n);

// Validated argument values of one op, by name (every declared argument is present, maybe None).
class BoundArgs {
 public:
  void set(const std::string& name, Value value) { values_[name] = std::move(value); }
  const Value& value(const std::string& name) const;
  bool declares(const std::string& name) const { return values_.count(name) > 0; }
  bool has(const std::string& name) const { return !value(name).is_none(); }
  bool b(const std::string& name) const;
  int64_t i(const std::string& name) const;
  double f(const std::string& name) const;  // an Int or Float value as double
  const std::string& s(const std::string& name) const;
  std::vector<int64_t> ints(const std::string& name) const;
  std::vector<double> numbers(const std::string& name) const;  // Ints or Floats as doubles

 private:
  std::unordered_map<std::string, Value> values_;
};

// Arguments any Caffe2 op may carry without effect on CPU results.
const std::set<std::string>& common_ignored_args();

// Decoded OperatorDef arguments -> BoundArgs: rejects unknown names (unless ignored), applies
// defaults, coerces types and runs the checks. Errors are OperatorArgumentError naming `op_type`.
BoundArgs bind_args(const std::string& op_type, const std::vector<ArgSpec>& specs,
                    const std::set<std::string>& ignored, const NamedValues& given);

}  // namespace c2rt

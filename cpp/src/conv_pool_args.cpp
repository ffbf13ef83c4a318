#include "conv_pool_args.h"

#include <map>
#include <set>

#include "errors.h"

namespace c2rt {
namespace {

struct Spelling {
  std::string single;
  std::vector<std::string> per_dim;
  std::string repeated;
  int64_t min_value;
};

const std::map<std::string, Spelling>& spellings() {
  static const std::map<std::string, Spelling> table{
      {"kernel", {"kernel", {"kernel_h", "kernel_w"}, "kernels", 1}},
      {"stride", {"stride", {"stride_h", "stride_w"}, "strides", 1}},
      {"dilation", {"dilation", {"dilation_h", "dilation_w"}, "dilations", 1}},
      {"adj", {"adj", {"adj_h", "adj_w"}, "adjs", 0}},
      {"pad", {"pad", {"pad_t", "pad_l", "pad_b", "pad_r"}, "pads", 0}},
  };
  return table;
}

ArgSpec int_at_least(const std::string& name, int64_t lo) {
  return IntOrNone(name).where(at_least(lo), "an int >= " + std::to_string(lo));
}

std::optional<std::vector<int64_t>> resolve(const std::string& op, const std::string& quantity, int64_t nd,
                                            const BoundArgs& args, std::optional<std::vector<int64_t>> fallback) {
  const Spelling& sp = spellings().at(quantity);
  if (!args.declares(sp.repeated)) return fallback;
  const size_t n = static_cast<size_t>(quantity == "pad" ? 2 * nd : nd);
  std::vector<std::string> given;
  std::set<std::string> forms;
  for (const std::string& name : {sp.single}) {
    if (args.has(name)) given.push_back(name), forms.insert("single");
  }
  for (const std::string& name : sp.per_dim) {
    if (args.has(name)) given.push_back(name), forms.insert("per_dim");
  }
  if (args.has(sp.repeated)) given.push_back(sp.repeated), forms.insert("repeated");
  if (forms.size() > 1) {
    throw OperatorArgumentError(op + ": " + names_str(given) + " all given, expected one spelling of " + quantity);
  }
  if (args.has(sp.single)) return std::vector<int64_t>(n, args.i(sp.single));
  if (args.has(sp.repeated)) {
    std::vector<int64_t> values = args.ints(sp.repeated);
    if (values.size() != n) {
      throw OperatorArgumentError(op + ": " + sp.repeated + "=" + ints_str(values) + ", expected " + std::to_string(n) +
                                  " values for a " + std::to_string(nd) + "-D " + op);
    }
    return values;
  }
  if (!given.empty()) {
    bool all = nd == 2;
    for (const std::string& name : sp.per_dim) all = all && args.has(name);
    if (!all) {
      throw OperatorArgumentError(op + ": " + names_str(given) + " given, expected all of " + names_str(sp.per_dim) +
                                  " (only for 2-D inputs)");
    }
    std::vector<int64_t> values;
    for (const std::string& name : sp.per_dim) values.push_back(args.i(name));
    return values;
  }
  return fallback;
}

// Larger values come only from a malformed file; bounding them keeps the kernels' size arithmetic
// (size + pads, kernel * dilation) far from int64 overflow.
constexpr int64_t kMaxGeometryValue = int64_t{1} << 20;

void check_bounded(const std::string& op, const std::string& quantity, const std::vector<int64_t>& values) {
  for (int64_t v : values) {
    if (v > kMaxGeometryValue) {
      throw OperatorArgumentError(op + ": " + quantity + "=" + ints_str(values) + ", expected values <= " +
                                  std::to_string(kMaxGeometryValue));
    }
  }
}

}  // namespace

std::vector<int64_t> Geometry::torch_pad() const {
  std::vector<int64_t> out;
  for (size_t k = pad_begin.size(); k-- > 0;) {
    out.push_back(pad_begin[k]);
    out.push_back(pad_end[k]);
  }
  return out;
}

std::vector<ArgSpec> geometry_args(const std::vector<std::string>& quantities) {
  std::vector<ArgSpec> args{
      Str("order", "NCHW").where(one_of({"NCHW"}), "'NCHW' (NHWC is not supported)"),
      Int("legacy_pad", 0).where(equals_int(0), "0 (NOTSET; legacy padding modes are not supported)"),
  };
  for (const std::string& q : quantities) {
    const Spelling& sp = spellings().at(q);
    args.push_back(int_at_least(sp.single, sp.min_value));
    for (const std::string& name : sp.per_dim) args.push_back(int_at_least(name, sp.min_value));
    args.push_back(IntListOrNone(sp.repeated, sp.min_value));
  }
  return args;
}

Geometry resolve_geometry(const std::string& op, int64_t nd, const BoundArgs& args) {
  if (nd < 1) {
    throw OperatorInputError(op + ": input has " + std::to_string(nd) +
                             " spatial dims, expected at least 1 (N, C, spatial...)");
  }
  const std::vector<int64_t> ones(nd, 1), zeros(nd, 0);
  std::vector<int64_t> both_zeros(2 * nd, 0);
  std::vector<int64_t> pads = *resolve(op, "pad", nd, args, both_zeros);
  Geometry geo;
  geo.kernel = resolve(op, "kernel", nd, args, std::nullopt);
  geo.stride = *resolve(op, "stride", nd, args, ones);
  geo.pad_begin.assign(pads.begin(), pads.begin() + nd);
  geo.pad_end.assign(pads.begin() + nd, pads.end());
  geo.dilation = *resolve(op, "dilation", nd, args, ones);
  geo.adj = *resolve(op, "adj", nd, args, zeros);
  check_bounded(op, "kernel", geo.kernel ? *geo.kernel : ones);
  check_bounded(op, "stride", geo.stride);
  check_bounded(op, "pads", pads);
  check_bounded(op, "dilation", geo.dilation);
  check_bounded(op, "adj", geo.adj);
  return geo;
}

}  // namespace c2rt

// Normalisation ops (SPEC 5.12): SpatialBN (inference), AffineChannel, GroupNorm; NCHW.
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

ArgSpec epsilon_arg() {
  return Float("epsilon", 1e-5).where([](const Value& v) { return v.f >= 0; }, "a float >= 0");
}

ArgSpec order_arg() { return Str("order", "NCHW").where(one_of({"NCHW"}), "'NCHW' (NHWC is not supported)"); }

// Checks that each named parameter is (C,) and returns it shaped (1, C, 1, ...) for broadcasting.
Tensors per_channel(const std::string& op, const at::Tensor& x,
                    const std::vector<std::pair<std::string, at::Tensor>>& params) {
  check_rank(op, "X", x, {2, 3, 4, 5, 6, 7, 8});
  const int64_t c = x.size(1);
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = c;
  Tensors out;
  for (const auto& [name, p] : params) {
    check_rank(op, name, p, {1});
    if (p.size(0) != c) {
      throw OperatorInputError(op + ": " + name + " shape=" + shape_of(p) + ", expected (" + std::to_string(c) +
                               ",) for X shape=" + shape_of(x));
    }
    out.push_back(p.reshape(shape));
  }
  return out;
}

// Y = scale * (X - mean) / sqrt(var + epsilon) + bias per channel (running statistics).
Tensors spatial_bn(const Tensors& in, const BoundArgs& args) {
  const Tensors p = per_channel("SpatialBN", in[0], {{"scale", in[1]}, {"bias", in[2]}, {"mean", in[3]}, {"var", in[4]}});
  return {(in[0] - p[2]) * (p[0] * at::rsqrt(p[3] + args.f("epsilon"))) + p[1]};
}

// Y = X * scale[c] + bias[c] (a frozen BatchNorm).
Tensors affine_channel(const Tensors& in, const BoundArgs&) {
  const Tensors p = per_channel("AffineChannel", in[0], {{"scale", in[1]}, {"bias", in[2]}});
  return {in[0] * p[0] + p[1]};
}

// Per (sample, group) statistics over (C/G, spatial), biased variance; outputs Y, mean, inv_std (N, G).
Tensors group_norm(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const Tensors p = per_channel("GroupNorm", x, {{"gamma", in[1]}, {"beta", in[2]}});
  const int64_t group = args.i("group");
  const int64_t n = x.size(0);
  const int64_t c = x.size(1);
  if (c % group) {
    throw OperatorArgumentError("GroupNorm: group=" + std::to_string(group) + ", expected a divisor of the " +
                                std::to_string(c) + " channels of X");
  }
  const at::Tensor grouped = x.reshape({n, group, -1});
  auto [var, mean] = at::var_mean(grouped, {2}, /*unbiased=*/false);
  const at::Tensor inv_std = at::rsqrt(var + args.f("epsilon"));
  const at::Tensor y = ((grouped - mean.unsqueeze(2)) * inv_std.unsqueeze(2)).reshape(x.sizes());
  return {y * p[0] + p[1], mean, inv_std};
}

}  // namespace

void register_normalization_ops() {
  register_op({"SpatialBN", spatial_bn,
               {epsilon_arg(), order_arg(), Bool("is_test", false).where(is_true(), "1 (inference only)"),
                Float("momentum", 0.9)},
               {5, 5},
               {1, 1},
               {"num_batches", "spatial"}});
  register_op({"AffineChannel", affine_channel, {order_arg(), Bool("is_learnable", false)}, {3, 3}});
  register_op({"GroupNorm", group_norm,
               {Int("group", 32).where(at_least(1), "an int >= 1"), epsilon_arg(), order_arg()},
               {3, 3},
               {1, 3}});
}

}  // namespace c2rt

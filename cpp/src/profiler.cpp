#include "profiler.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <sstream>
#include <vector>

namespace c2rt {
namespace {

constexpr int64_t kPeakSize = 4096;

double product(at::IntArrayRef dims, size_t from = 0) {
  double p = 1;
  for (size_t k = from; k < dims.size(); ++k) p *= static_cast<double>(dims[k]);
  return p;
}

std::string format(const char* pattern, double a, double b = 0, double c = 0) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), pattern, a, b, c);
  return buffer;
}

}  // namespace

void Profile::add(const std::string& type, double seconds, std::optional<double> flops) {
  OpTypeStats& s = ops[type];
  ++s.calls;
  s.seconds += seconds;
  if (flops) {
    s.flops += *flops;
    s.flop_seconds += seconds;
  }
}

std::optional<double> op_flops(const std::string& type, const Tensors& in, const Tensors& out) {
  if (out.empty() || !out[0].defined() || in.size() < 2 || !in[1].defined()) return std::nullopt;
  const std::string base = type.substr(0, type.find('+'));
  if (base == "Conv") return 2 * product(out[0].sizes()) * product(in[1].sizes(), 1);
  if (base == "ConvTranspose") return 2 * product(in[0].sizes()) * product(in[1].sizes(), 1);
  if (base == "FC" || base == "FCTransposed") {
    const double n = out[0].dim() > 0 ? static_cast<double>(out[0].size(-1)) : 1;
    return n > 0 ? 2 * product(out[0].sizes()) * (product(in[1].sizes()) / n) : 0;
  }
  return std::nullopt;
}

double fp32_peak_gflops() {
  const at::Tensor a = at::randn({kPeakSize, kPeakSize});
  const at::Tensor b = at::randn({kPeakSize, kPeakSize});
  at::mm(a, b);  // warm-up
  double best = std::numeric_limits<double>::infinity();
  for (int k = 0; k < 3; ++k) {
    const auto start = std::chrono::steady_clock::now();
    at::mm(a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return 2.0 * kPeakSize * kPeakSize * kPeakSize / best / 1e9;
}

std::string profile_table(const Profile& profile, double peak_gflops) {
  const double runs = static_cast<double>(std::max<int64_t>(profile.runs, 1));
  std::vector<std::pair<std::string, OpTypeStats>> rows(profile.ops.begin(), profile.ops.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  OpTypeStats total;
  for (const auto& [type, s] : rows) {
    total.calls += s.calls;
    total.seconds += s.seconds;
    total.flops += s.flops;
    total.flop_seconds += s.flop_seconds;
  }
  char header[128];
  std::snprintf(header, sizeof(header), "%-22s %9s %10s %7s %10s %9s %8s", "op type", "calls/run", "ms/run", "share",
                "GFLOP/run", "GFLOP/s", "of peak");
  const std::string rule(std::string(header).size(), '-');
  std::ostringstream out;
  out << "profile of " << profile.runs << " runs\n" << header << "\n" << rule << "\n";
  auto row = [&](const std::string& name, const OpTypeStats& s) {
    char line[160];
    const double share = total.seconds > 0 ? 100.0 * s.seconds / total.seconds : 0.0;
    std::snprintf(line, sizeof(line), "%-22s %9.1f %10.2f %6.1f%%", name.c_str(), s.calls / runs, s.seconds / runs * 1e3,
                  share);
    std::string text = line;
    if (s.flops > 0 && s.flop_seconds > 0) {
      const double rate = s.flops / s.flop_seconds / 1e9;
      text += format(" %10.4f %9.1f", s.flops / runs / 1e9, rate) + format(" %7.1f%%", 100.0 * rate / peak_gflops);
    }
    out << text << "\n";
  };
  for (const auto& [type, s] : rows) row(type, s);
  out << rule << "\n";
  row("total", total);
  out << format("fp32 peak: %.1f GFLOP/s (", peak_gflops) << kPeakSize << "^2 float32 matmul, "
      << at::get_num_threads() << " threads)\n";
  return out.str();
}

}  // namespace c2rt

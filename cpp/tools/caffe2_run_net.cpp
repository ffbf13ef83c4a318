// caffe2_run_net: feed .npy tensors to a Caffe2 net, run it, and dump its external outputs as .npy.
//
//   caffe2_run_net --predict_net=model.pb [--init_net=model_init.pb] --inputs=data.npy,im_info.npy
//                  --output_dir=out [--iters=N] [--device=cpu|cuda] [--threads=N]
//
// Inputs map in order to the graph inputs (the predict net's external inputs that the init net does
// not produce); outputs are written as out/output_<k>.npy for the k-th external output, with
// out/outputs.txt listing the blob names. --iters=N > 0 also times N more runs and prints
// "Latency: <seconds> seconds per run"; with --profile, the table of src/profiler.h over those runs
// (time per op type, share, GFLOP/s of the convolutions against the measured fp32 matmul peak).
//
// --batch_dir=DIR runs every subdirectory of DIR as one case: predict_net.pb, optional init_net.pb,
// input_<k>.npy; it writes output_<k>.npy, or error.txt with the error when the case fails.
// --list_ops prints the registered op types. --show_layout prints the convolution filters stored
// channels-last at load time and the memory layout of each output (see src/layout.h). --show_inplace
// prints the indices of the predict net's ops that run in place (see src/inplace.h); --show_ops prints
// the type of each op as it runs (fused convolutions as "Conv+Add+Relu", src/fusion.h); --nofuse
// runs the unfused net (for comparisons).
#include <gflags/gflags.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "errors.h"
#include "layout.h"
#include "npy.h"
#include "profiler.h"
#include "proto_io.h"
#include "registry.h"
#include "tool_common.h"
#include "workspace.h"

DEFINE_string(predict_net, "", "predict NetDef (.pb, or .pbtxt)");
DEFINE_string(init_net, "", "init NetDef (optional)");
DEFINE_string(inputs, "", "comma-separated .npy files, one per graph input, in order");
DEFINE_string(output_dir, "", "directory for output_<k>.npy and outputs.txt");
DEFINE_string(batch_dir, "", "run every case subdirectory of this directory");
DEFINE_string(device, "cpu", "cpu or cuda");
DEFINE_int32(iters, 0, "time this many more runs after the first");
DEFINE_int32(threads, 0, "ATen intra-op threads (0: ATen's default)");
DEFINE_bool(list_ops, false, "print the registered op types and exit");
DEFINE_bool(profile, false, "with --iters, print time, share and GFLOP/s per op type");
DEFINE_bool(fuse, true, "fuse Conv(+Add)(+Relu) chains into one oneDNN convolution (CPU)");
DEFINE_bool(show_ops, false, "print the type of each predict net op as it runs (after fusion)");
DEFINE_bool(show_layout, false, "print the filters stored channels-last and the memory layout of each output");
DEFINE_bool(show_inplace, false, "print the indices of the predict net's ops that write into their input 0");

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) parts.push_back(item);
  }
  return parts;
}

c2rt::NetSpec empty_net() { return c2rt::NetSpec{}; }

void write_outputs(const c2rt::ProtobufModel& model, const std::vector<at::Tensor>& outputs, const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream names(dir / "outputs.txt");
  for (size_t k = 0; k < outputs.size(); ++k) {
    c2rt::write_npy((dir / ("output_" + std::to_string(k) + ".npy")).string(), outputs[k]);
    names << model.output_names()[k] << "\n";
  }
}

void print_layout(const c2rt::ProtobufModel& model, const std::vector<at::Tensor>& outputs) {
  std::cout << "Channels-last filters: " << c2rt::names_str(model.channels_last_filter_names()) << std::endl;
  for (size_t k = 0; k < outputs.size(); ++k) {
    std::cout << "Output '" << model.output_names()[k] << "' layout: " << c2rt::layout_name(outputs[k]) << std::endl;
  }
}

// Runs the model once and, with iters > 0, prints the mean latency of `iters` more runs.
std::vector<at::Tensor> run_timed(const c2rt::ProtobufModel& model, const std::vector<at::Tensor>& inputs, int iters) {
  std::vector<at::Tensor> outputs = model.run(inputs);
  if (iters > 0) {
    c2rt::Profile profile;
    const auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < iters; ++k) outputs = model.run(inputs, FLAGS_profile ? &profile : nullptr);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::cout << "Latency: " << elapsed.count() / iters << " seconds per run" << std::endl;
    if (FLAGS_profile) std::cout << c2rt::profile_table(profile, c2rt::fp32_peak_gflops()) << std::flush;
  }
  return outputs;
}

int run_single(const at::Device& device) {
  if (FLAGS_predict_net.empty()) throw c2rt::Caffe2Error("--predict_net is required");
  const c2rt::NetSpec predict = c2rt::load_net(FLAGS_predict_net);
  const c2rt::NetSpec init = FLAGS_init_net.empty() ? empty_net() : c2rt::load_net(FLAGS_init_net);
  const c2rt::ProtobufModel model(predict, init, device, FLAGS_fuse);
  if (FLAGS_show_inplace) std::cout << "In-place ops: " << c2rt::ints_str(model.inplace_op_indices()) << std::endl;
  if (FLAGS_show_ops) std::cout << "Ops: " << c2rt::names_str(model.op_types()) << std::endl;
  std::vector<at::Tensor> inputs;
  for (const std::string& path : split_commas(FLAGS_inputs)) inputs.push_back(c2rt::read_npy(path));
  const std::vector<at::Tensor> outputs = run_timed(model, inputs, FLAGS_iters);
  if (FLAGS_show_layout) print_layout(model, outputs);
  if (!FLAGS_output_dir.empty()) write_outputs(model, outputs, FLAGS_output_dir);
  return 0;
}

void run_case(const fs::path& dir, const at::Device& device) {
  const c2rt::NetSpec predict = c2rt::load_net((dir / "predict_net.pb").string());
  const c2rt::NetSpec init = fs::exists(dir / "init_net.pb") ? c2rt::load_net((dir / "init_net.pb").string()) : empty_net();
  const c2rt::ProtobufModel model(predict, init, device, FLAGS_fuse);
  std::vector<at::Tensor> inputs;
  for (size_t k = 0; fs::exists(dir / ("input_" + std::to_string(k) + ".npy")); ++k) {
    inputs.push_back(c2rt::read_npy((dir / ("input_" + std::to_string(k) + ".npy")).string()));
  }
  write_outputs(model, model.run(inputs), dir);
}

int run_batch(const at::Device& device) {
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(FLAGS_batch_dir)) {
    if (entry.is_directory()) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  for (const fs::path& dir : cases) {
    try {
      run_case(dir, device);
    } catch (const std::exception& e) {
      std::ofstream(dir / "error.txt") << c2rt::tools::describe_error(e) << "\n";
    }
  }
  std::cout << "ran " << cases.size() << " cases from " << FLAGS_batch_dir << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("run a Caffe2 NetDef on .npy inputs and dump its outputs");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  try {
    c2rt::tools::set_threads(FLAGS_threads);
    if (FLAGS_list_ops) {
      for (const std::string& type : c2rt::registered_ops()) std::cout << type << "\n";
      return 0;
    }
    const at::Device device = c2rt::tools::parse_device(FLAGS_device);
    return FLAGS_batch_dir.empty() ? run_single(device) : run_batch(device);
  } catch (const std::exception& e) {
    std::cerr << "caffe2_run_net: error: " << c2rt::tools::describe_error(e) << std::endl;
    return 1;
  }
}

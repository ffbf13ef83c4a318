// Run a Mask R-CNN exported to TorchScript (tools/export_model.py --format torchscript) on one image,
// print its detections and latency (detectron2's tools/deploy/torchscript_mask_rcnn.cpp, SPEC 8.4).
//
//   ./torchscript_mask_rcnn model.ts input.jpg EXPORT_METHOD
//
// EXPORT_METHOD is the --export-method the model was exported with:
//   tracing         input: one CHW float tensor (BGR); output: a tuple whose first four elements are
//                   pred_boxes, pred_classes, pred_masks, scores (Instances fields in name order);
//   scripting       input: a tuple with one Dict[str, Tensor] {"image": CHW float tensor}; output: a list
//                   with one Dict[str, Tensor] of the same fields;
//   caffe2_tracing  input: (data (1, 3, H, W) float, im_info (1, 3) = [H, W, 1.0]), H and W multiples of 32;
//                   output: (bbox_nms, score_nms, class_nms, mask_fcn_probs). The graph calls _caffe2:: ops,
//                   which must be registered in this process (this program does not provide them).
//
// torchvision's operators (torchvision::nms, torchvision::roi_align, called by traced and scripted
// models): the torchvision pip wheel ships them only inside its Python extension library
// (torchvision/_C*.so), which depends on libtorch_python.so, which in turn needs the symbols of
// libpython. We load libpython and libtorch_python with RTLD_GLOBAL and then the extension library;
// its static initialisers register the operators with the dispatcher. No interpreter is started.
// We chose this over registering our own kernels under the torchvision:: names because these are the
// very kernels the Python side ran when the model was exported and checked, so C++ results match
// Python exactly, and nothing has to be kept in sync with torchvision's operator schemas.
// The library paths are found by CMake from the Python that has torch and torchvision.

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <string>
#include <tuple>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/cuda.h>
#include <torch/script.h>

#ifndef D2E_PYTHON_LIBRARY
#error "D2E_PYTHON_LIBRARY (path of libpython3.x.so) must be defined by the build"
#endif
#ifndef D2E_TORCH_PYTHON_LIBRARY
#error "D2E_TORCH_PYTHON_LIBRARY (path of torch/lib/libtorch_python.so) must be defined by the build"
#endif
#ifndef D2E_TORCHVISION_OPS_LIBRARY
#error "D2E_TORCHVISION_OPS_LIBRARY (path of torchvision/_C*.so) must be defined by the build"
#endif

namespace {

constexpr const char* kUsage = R"(Usage:
   ./torchscript_mask_rcnn model.ts input.jpg EXPORT_METHOD

   EXPORT_METHOD can be "tracing", "caffe2_tracing" or "scripting".
)";

struct MaskRCNNOutputs {
  at::Tensor pred_boxes, pred_classes, pred_masks, scores;
  int64_t num_instances() const { return pred_boxes.size(0); }
};

void load_library(const char* path, int flags) {
  if (dlopen(path, RTLD_NOW | flags) == nullptr) {
    throw std::runtime_error(std::string("cannot load ") + path + ": " + dlerror());
  }
}

// Registers torchvision::nms, torchvision::roi_align, ... (see the comment at the top).
void load_torchvision_ops() {
  load_library(D2E_PYTHON_LIBRARY, RTLD_GLOBAL);
  load_library(D2E_TORCH_PYTHON_LIBRARY, RTLD_GLOBAL);
  load_library(D2E_TORCHVISION_OPS_LIBRARY, RTLD_LOCAL);
}

// (H, W, 3) uint8 BGR image -> (3, H, W) float tensor on `device` (a copy: it outlives `img`).
at::Tensor to_chw_float(const cv::Mat& img, c10::Device device) {
  auto hwc = torch::from_blob(img.data, {img.rows, img.cols, 3}, torch::kUInt8);
  return hwc.to(device, torch::kFloat).permute({2, 0, 1}).contiguous();
}

c10::IValue caffe2_tracing_inputs(const cv::Mat& img, c10::Device device) {
  // caffe2_tracing graphs do not pad the image, FPN needs sizes divisible by 32
  if (img.rows % 32 != 0 || img.cols % 32 != 0) {
    throw std::runtime_error("caffe2_tracing: image size " + std::to_string(img.rows) + "x" +
                             std::to_string(img.cols) + ", expected multiples of 32");
  }
  auto data = to_chw_float(img, device).unsqueeze(0);
  auto im_info = torch::tensor({static_cast<float>(img.rows), static_cast<float>(img.cols), 1.0f})
                     .view({1, 3})
                     .to(device);
  return std::make_tuple(data, im_info);
}

c10::IValue scripting_inputs(const cv::Mat& img, c10::Device device) {
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("image", to_chw_float(img, device));
  return std::make_tuple(dict);  // Tuple[Dict[str, Tensor]]
}

c10::IValue get_inputs(const std::string& method, const cv::Mat& img, c10::Device device) {
  if (method == "tracing") return to_chw_float(img, device);
  if (method == "caffe2_tracing") return caffe2_tracing_inputs(img, device);
  return scripting_inputs(img, device);
}

MaskRCNNOutputs get_outputs(const std::string& method, const c10::IValue& outputs) {
  if (method == "tracing") {
    const auto& t = outputs.toTupleRef().elements();  // fields in name order
    return {t[0].toTensor(), t[1].toTensor(), t[2].toTensor(), t[3].toTensor()};
  }
  if (method == "caffe2_tracing") {
    const auto& t = outputs.toTupleRef().elements();  // Caffe2's legacy order: bbox, score, class, mask
    return {t[0].toTensor(), t[2].toTensor(), t[3].toTensor(), t[1].toTensor()};
  }
  auto dict = outputs.toList().get(0).toGenericDict();  // ScriptableAdapter: List[Dict[str, Tensor]]
  return {dict.at("pred_boxes").toTensor(), dict.at("pred_classes").toTensor(),
          dict.at("pred_masks").toTensor(), dict.at("scores").toTensor()};
}

void synchronize(c10::Device device) {
  if (device.is_cuda()) {
    // the sync is all we need from CUDA, through the dispatcher (no CUDA headers)
    torch::cuda::synchronize(device.index());
  }
}

void print_detections(const MaskRCNNOutputs& out) {
  std::cout << "Number of detected objects: " << out.num_instances() << "\n";
  auto describe = [](const char* name, const at::Tensor& t) {
    std::cout << name << ": " << t.toString() << " " << t.sizes() << "\n";
  };
  describe("pred_boxes", out.pred_boxes);
  describe("scores", out.scores);
  describe("pred_classes", out.pred_classes);
  describe("pred_masks", out.pred_masks);
  std::cout << out.pred_boxes << "\n";

  // one line per detection with full precision, for people and for tests
  auto boxes = out.pred_boxes.to(torch::kCPU, torch::kDouble);
  auto scores = out.scores.to(torch::kCPU, torch::kDouble);
  auto classes = out.pred_classes.to(torch::kCPU, torch::kLong);
  std::cout << std::fixed << std::setprecision(4);
  for (int64_t i = 0; i < out.num_instances(); ++i) {
    std::cout << "detection " << i << ": class=" << classes[i].item<int64_t>()
              << " score=" << scores[i].item<double>() << " box=[" << boxes[i][0].item<double>() << ", "
              << boxes[i][1].item<double>() << ", " << boxes[i][2].item<double>() << ", "
              << boxes[i][3].item<double>() << "]\n";
  }
}

int run(const std::string& model_path, const std::string& image_path, const std::string& method) {
  if (method != "caffe2_tracing") load_torchvision_ops();

  torch::jit::FusionStrategy strategy = {{torch::jit::FusionBehavior::DYNAMIC, 1}};
  torch::jit::setFusionStrategy(strategy);
  torch::autograd::AutoGradMode no_grad(false);

  auto module = torch::jit::load(model_path);
  auto buffers = module.buffers();
  if (buffers.size() == 0) {
    throw std::runtime_error(model_path + ": the model has no buffers to take the device from");
  }
  // the whole model is assumed to be on one device; inputs go there too
  const c10::Device device = (*buffers.begin()).device();

  cv::Mat img = cv::imread(image_path, cv::IMREAD_COLOR);  // BGR, as detectron2 models expect
  if (img.empty()) throw std::runtime_error(image_path + ": cannot read the image");
  auto inputs = get_inputs(method, img, device);

  auto output = module.forward({inputs});
  synchronize(device);

  constexpr int kWarmup = 1, kBenchmark = 3;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kWarmup + kBenchmark; ++i) {
    if (i == kWarmup) start = std::chrono::steady_clock::now();
    output = module.forward({inputs});
    synchronize(device);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "Latency (should vary with different inputs): " << seconds / kBenchmark << " seconds\n";

  print_detections(get_outputs(method, output));
  return 0;
}

}  // namespace

int main(int argc, const char* argv[]) {
  if (argc != 4) {
    std::cerr << kUsage;
    return 1;
  }
  const std::string method = argv[3];
  if (method != "tracing" && method != "caffe2_tracing" && method != "scripting") {
    std::cerr << "EXPORT_METHOD=" << method << ", expected tracing, caffe2_tracing or scripting\n" << kUsage;
    return 1;
  }
  try {
    return run(argv[1], argv[2], method);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

// caffe2_mask_rcnn: run an exported detectron2 Caffe2 model (model.pb + model_init.pb) on an image
// and print its raw outputs (detectron2's tools/deploy/caffe2_mask_rcnn.cpp, on libtorch).
//
//   caffe2_mask_rcnn --predict_net=model.pb --init_net=model_init.pb --input=input.jpg
//                    [--device=cpu|cuda] [--iters=3] [--min_size=800 --max_size=1333]
//                    [--dump_outputs=DIR] [--mask_dir=.] [--score_thresh=0.6]
//
// The image is read as BGR, resized like detectron2's test-time ResizeShortestEdge, padded to the
// predict net's `size_divisibility` argument, and fed as `data` (1, 3, H, W) float and `im_info`
// [[H, W, 1.0]] (H, W: the resized size). Boxes are therefore in resized-image pixels.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <opencv2/imgcodecs.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "errors.h"
#include "image_input.h"
#include "npy.h"
#include "proto_io.h"
#include "tool_common.h"
#include "workspace.h"

DEFINE_string(predict_net, "", "path to model.pb");
DEFINE_string(init_net, "", "path to model_init.pb");
DEFINE_string(input, "", "input image (any format OpenCV reads)");
DEFINE_string(device, "cpu", "cpu or cuda");
DEFINE_int32(iters, 3, "timed runs after the first one");
DEFINE_int32(min_size, 800, "test-time shortest edge (INPUT.MIN_SIZE_TEST)");
DEFINE_int32(max_size, 1333, "test-time longest edge limit (INPUT.MAX_SIZE_TEST)");
DEFINE_string(dump_outputs, "", "write data, im_info and every external output as <blob>.npy here");
DEFINE_string(mask_dir, ".", "write mask<i>.png of each printed detection here (empty: do not write)");
DEFINE_double(score_thresh, 0.6, "print detections (and masks) with at least this score");
DEFINE_int32(threads, 0, "ATen intra-op threads (0: ATen's default)");

namespace fs = std::filesystem;

namespace {

std::string dtype_name(const at::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

// "Tensor bbox_nms of type Float. Dims: (5, 4)", then the values for small tensors, else a summary.
void print_tensor(const std::string& label, const std::string& name, const at::Tensor& t) {
  std::cout << label << ": Tensor " << name << " of type " << dtype_name(t) << ". Dims: "
            << c2rt::shape_str(t.sizes().vec()) << std::endl;
  if (t.numel() == 0) return;
  if (t.numel() <= 400) {
    std::cout << t << std::endl;
    return;
  }
  const at::Tensor f = t.to(at::kDouble);
  std::cout << "  min=" << f.min().item<double>() << " max=" << f.max().item<double>()
            << " mean=" << f.mean().item<double>() << std::endl;
}

const at::Tensor* find_output(const std::vector<std::string>& names, const std::vector<at::Tensor>& outputs,
                              const std::string& name) {
  for (size_t k = 0; k < names.size(); ++k) {
    if (names[k] == name) return &outputs[k];
  }
  return nullptr;
}

void write_mask(const at::Tensor& mask_probs, int64_t detection, int64_t label) {
  const int64_t channel = mask_probs.size(1) == 1 ? 0 : label;
  const at::Tensor mask = (mask_probs[detection][channel] * 255).clamp(0, 255).to(at::kByte).contiguous();
  const cv::Mat image(static_cast<int>(mask.size(0)), static_cast<int>(mask.size(1)), CV_8UC1, mask.data_ptr());
  const fs::path path = fs::path(FLAGS_mask_dir) / ("mask" + std::to_string(detection) + ".png");
  cv::imwrite(path.string(), image);
}

std::string output_shape_error(const std::string& name, const at::Tensor& t, const std::string& expected) {
  return "predict net output " + name + " shape=" + c2rt::shape_str(t.sizes().vec()) + ", expected " + expected;
}

// What print_predictions reads, checked first so that no model file can make it read past a tensor:
// bbox_nms (N, 4), score_nms (N,), class_nms (N,) of whole class ids >= 0, and mask_fcn_probs
// (N, C, M, M') with C == 1 (class-agnostic) or every class id < C.
void check_detection_outputs(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& classes,
                             const at::Tensor* masks) {
  if (scores.dim() != 1) throw c2rt::OperatorInputError(output_shape_error("score_nms", scores, "(N,)"));
  const int64_t n = scores.size(0);
  const std::string count = std::to_string(n);
  if (boxes.dim() != 2 || boxes.size(0) != n || boxes.size(1) != 4) {
    throw c2rt::OperatorInputError(output_shape_error("bbox_nms", boxes, "(" + count + ", 4) (N rows of score_nms)"));
  }
  if (classes.dim() != 1 || classes.size(0) != n) {
    throw c2rt::OperatorInputError(output_shape_error("class_nms", classes, "(" + count + ",) (N of score_nms)"));
  }
  const at::Tensor ids = classes.to(at::kDouble);
  if (n > 0 && !(ids >= 0).logical_and(ids == ids.trunc()).all().item<bool>()) {
    throw c2rt::OperatorInputError("predict net output class_nms has values other than whole numbers >= 0, "
                                   "expected class ids");
  }
  if (!masks) return;
  if (masks->dim() != 4 || masks->size(0) != n || masks->size(1) < 1) {
    throw c2rt::OperatorInputError(output_shape_error("mask_fcn_probs", *masks, "(" + count + ", C, M, M) with C >= 1"));
  }
  if (n > 0 && masks->size(1) > 1 && ids.max().item<double>() >= static_cast<double>(masks->size(1))) {
    throw c2rt::OperatorInputError("predict net output class_nms has class id " +
                                   std::to_string(static_cast<int64_t>(ids.max().item<double>())) +
                                   ", expected < " + std::to_string(masks->size(1)) +
                                   " (the class channels of mask_fcn_probs shape=" +
                                   c2rt::shape_str(masks->sizes().vec()) + ")");
  }
}

// Prediction lines for detections with score >= --score_thresh, and their mask PNGs.
void print_predictions(const std::vector<std::string>& names, const std::vector<at::Tensor>& outputs) {
  const at::Tensor* boxes = find_output(names, outputs, "bbox_nms");
  const at::Tensor* scores = find_output(names, outputs, "score_nms");
  const at::Tensor* classes = find_output(names, outputs, "class_nms");
  const at::Tensor* masks = find_output(names, outputs, "mask_fcn_probs");
  if (!boxes || !scores || !classes) {
    LOG(WARNING) << "no bbox_nms/score_nms/class_nms outputs: not a Mask R-CNN style net; skipping predictions";
    return;
  }
  check_detection_outputs(*boxes, *scores, *classes, masks);
  const at::Tensor b = boxes->to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor s = scores->to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor c = classes->to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor m = masks ? masks->to(at::kCPU, at::kFloat) : at::Tensor();
  if (!FLAGS_mask_dir.empty() && masks) fs::create_directories(FLAGS_mask_dir);
  for (int64_t i = 0; i < s.size(0); ++i) {
    const float score = s[i].item<float>();
    if (score < FLAGS_score_thresh) continue;
    const int64_t label = static_cast<int64_t>(c[i].item<float>());
    const float* box = b[i].data_ptr<float>();
    std::cout << "Prediction " << i << ", xyxy=(" << box[0] << ", " << box[1] << ", " << box[2] << ", " << box[3]
              << "); score=" << score << "; label=" << label << std::endl;
    if (!FLAGS_mask_dir.empty() && masks) write_mask(m, i, label);
  }
}

void dump(const fs::path& dir, const std::vector<std::string>& names, const std::vector<at::Tensor>& tensors) {
  fs::create_directories(dir);
  for (size_t k = 0; k < names.size(); ++k) {
    c2rt::write_npy((dir / (c2rt::tools::file_stem(names[k]) + ".npy")).string(), tensors[k]);
  }
}

int run() {
  if (FLAGS_predict_net.empty() || FLAGS_init_net.empty() || FLAGS_input.empty()) {
    throw c2rt::Caffe2Error("--predict_net, --init_net and --input are required");
  }
  c2rt::tools::set_threads(FLAGS_threads);
  const at::Device device = c2rt::tools::parse_device(FLAGS_device);
  const cv::Mat image = c2rt::tools::read_image(FLAGS_input);
  const c2rt::NetSpec predict_net = c2rt::load_net(FLAGS_predict_net);
  const c2rt::NetSpec init_net = c2rt::load_net(FLAGS_init_net);
  const c2rt::tools::ModelMeta meta = c2rt::tools::read_model_meta(predict_net, FLAGS_predict_net);
  const c2rt::tools::ModelInput input =
      c2rt::tools::prepare_input(image, FLAGS_min_size, FLAGS_max_size, meta.size_divisibility, meta.pad_value);
  LOG(INFO) << "image " << image.rows << "x" << image.cols << " resized to " << input.height << "x" << input.width
            << ", data " << c2rt::shape_str(input.data.sizes().vec()) << " (size_divisibility "
            << meta.size_divisibility << ")";

  c2rt::ProtobufModel model(predict_net, init_net, device);
  LOG(INFO) << model.channels_last_filter_names().size() << " convolution filters stored channels-last";
  if (model.input_names() != std::vector<std::string>{"data", "im_info"}) {
    throw c2rt::OperatorInputError("predict net graph inputs=" + c2rt::names_str(model.input_names()) +
                                   ", expected ['data', 'im_info']");
  }
  std::vector<at::Tensor> outputs = model.run({input.data, input.im_info});
  if (FLAGS_iters > 0) {
    const auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < FLAGS_iters; ++k) outputs = model.run({input.data, input.im_info});
    if (device.is_cuda()) {
      for (const at::Tensor& t : outputs) t.cpu();  // waits for the device
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::cout << "Latency (should vary with different inputs): " << elapsed.count() / FLAGS_iters << " seconds"
              << std::endl;
  }
  const std::vector<std::string>& names = model.output_names();
  const std::map<std::string, std::string> labels{
      {"bbox_nms", "bbox"}, {"score_nms", "scores"}, {"class_nms", "labels"}, {"mask_fcn_probs", "mask_probs"}};
  for (size_t k = 0; k < names.size(); ++k) {
    auto it = labels.find(names[k]);
    print_tensor(it == labels.end() ? names[k] : it->second, names[k], outputs[k].cpu());
  }
  print_predictions(names, outputs);
  if (!FLAGS_dump_outputs.empty()) {
    dump(FLAGS_dump_outputs, {"data", "im_info"}, {input.data, input.im_info});
    dump(FLAGS_dump_outputs, names, outputs);
    LOG(INFO) << "wrote inputs and outputs as .npy to " << FLAGS_dump_outputs;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  gflags::SetUsageMessage("run an exported detectron2 Caffe2 model on an image");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << "caffe2_mask_rcnn: error: " << c2rt::tools::describe_error(e) << std::endl;
    return 1;
  }
}

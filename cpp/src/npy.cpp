#include "npy.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <utility>
#include <vector>

#include "errors.h"

namespace c2rt {
namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

const std::vector<std::pair<std::string, at::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, at::ScalarType>> table{
      {"<f4", at::kFloat}, {"<f8", at::kDouble}, {"<f2", at::kHalf},  {"<i8", at::kLong},
      {"<i4", at::kInt},   {"<i2", at::kShort},  {"|i1", at::kChar},  {"|u1", at::kByte},
      {"|b1", at::kBool},  {"<u2", at::kUInt16},
  };
  return table;
}

at::ScalarType scalar_type_of(const std::string& descr, const std::string& path) {
  for (const auto& [name, type] : dtype_table()) {
    if (name == descr) return type;
  }
  throw Caffe2Error(path + ": npy dtype '" + descr + "' is not supported, expected a little-endian number or bool");
}

std::string descr_of(at::ScalarType type, const std::string& path) {
  for (const auto& [name, table_type] : dtype_table()) {
    if (table_type == type) return name;
  }
  throw Caffe2Error(path + ": tensor dtype " + std::string(c10::toString(type)) + " has no npy dtype here");
}

std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  std::smatch match;
  const std::regex pattern("'" + key + "'\\s*:\\s*('[^']*'|True|False|\\([^)]*\\))");
  if (!std::regex_search(header, match, pattern)) {
    throw Caffe2Error(path + ": npy header has no '" + key + "': " + header);
  }
  return match[1].str();
}

std::vector<int64_t> parse_shape(const std::string& tuple, const std::string& path) {
  std::vector<int64_t> dims;
  std::string inner = tuple.substr(1, tuple.size() - 2);
  std::stringstream items(inner);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.find_first_not_of(" \t") == std::string::npos) continue;
    size_t used = 0;
    int64_t d = -1;
    try {
      d = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos || d < 0) {
      throw Caffe2Error(path + ": npy shape " + tuple + ", expected a tuple of non-negative ints");
    }
    dims.push_back(d);
  }
  return dims;
}

// Bytes of a (dims) array of `element_size`-byte items; Caffe2Error naming the file when that exceeds
// the `available` bytes left in it (checked before allocating, without overflow).
int64_t data_bytes(const std::vector<int64_t>& dims, int64_t element_size, int64_t available, const std::string& path) {
  int64_t n = element_size;
  for (int64_t d : dims) {
    if (d == 0) return 0;
    if (d > available / n) n = available + 1;
    else n *= d;
  }
  if (n > available) {
    throw Caffe2Error(path + ": truncated .npy data, shape " + shape_str(dims) + " needs more than the " +
                      std::to_string(available) + " bytes left in the file");
  }
  return n;
}

}  // namespace

at::Tensor read_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw Caffe2Error(path + ": cannot open file, expected a .npy array");
  const int64_t file_size = static_cast<int64_t>(file.tellg());
  file.seekg(0);
  char magic[kMagicLen];
  unsigned char version[2];
  if (!file.read(magic, kMagicLen) || std::memcmp(magic, kMagic, kMagicLen) != 0 ||
      !file.read(reinterpret_cast<char*>(version), 2)) {
    throw Caffe2Error(path + ": not a .npy file (bad magic string)");
  }
  uint32_t header_len = 0;
  if (version[0] == 1) {
    unsigned char len[2];
    file.read(reinterpret_cast<char*>(len), 2);
    header_len = len[0] | (len[1] << 8);
  } else {
    unsigned char len[4];
    file.read(reinterpret_cast<char*>(len), 4);
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<uint32_t>(len[3]) << 24);
  }
  if (!file || static_cast<int64_t>(header_len) > file_size) {
    throw Caffe2Error(path + ": truncated .npy header, header length " + std::to_string(header_len) +
                      " exceeds the file size " + std::to_string(file_size));
  }
  std::string header(header_len, '\0');
  if (!file.read(header.data(), header_len)) throw Caffe2Error(path + ": truncated .npy header");
  std::string descr = header_field(header, "descr", path);
  descr = descr.substr(1, descr.size() - 2);
  if (descr == "<b1") descr = "|b1";
  if (descr == "<i1") descr = "|i1";
  if (descr == "<u1") descr = "|u1";
  const at::ScalarType type = scalar_type_of(descr, path);
  const bool fortran = header_field(header, "fortran_order", path) == "True";
  std::vector<int64_t> dims = parse_shape(header_field(header, "shape", path), path);
  if (fortran) std::reverse(dims.begin(), dims.end());
  data_bytes(dims, static_cast<int64_t>(c10::elementSize(type)), file_size - static_cast<int64_t>(file.tellg()), path);
  at::Tensor tensor = at::empty(dims, at::TensorOptions().dtype(type));
  const auto nbytes = static_cast<std::streamsize>(tensor.nbytes());
  if (nbytes && !file.read(static_cast<char*>(tensor.data_ptr()), nbytes)) {
    throw Caffe2Error(path + ": truncated .npy data, expected " + std::to_string(nbytes) + " bytes for shape " +
                      shape_str(dims));
  }
  if (fortran && tensor.dim() > 1) {
    std::vector<int64_t> reverse_dims(tensor.dim());
    for (int64_t d = 0; d < tensor.dim(); ++d) reverse_dims[d] = tensor.dim() - 1 - d;
    tensor = tensor.permute(reverse_dims).contiguous();
  }
  return tensor;
}

void write_npy(const std::string& path, const at::Tensor& tensor) {
  const at::Tensor cpu = tensor.to(at::kCPU).contiguous();
  std::ostringstream shape;
  shape << "(";
  for (int64_t d = 0; d < cpu.dim(); ++d) shape << cpu.size(d) << (cpu.dim() == 1 || d + 1 < cpu.dim() ? ", " : "");
  shape << ")";
  std::string header = "{'descr': '" + descr_of(cpu.scalar_type(), path) + "', 'fortran_order': False, 'shape': " +
                       shape.str() + ", }";
  const size_t unpadded = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream file(path, std::ios::binary);
  if (!file) throw Caffe2Error(path + ": cannot open for writing");
  file.write(kMagic, kMagicLen);
  const char version[2] = {1, 0};
  file.write(version, 2);
  const char len[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>((header.size() >> 8) & 0xff)};
  file.write(len, 2);
  file.write(header.data(), static_cast<std::streamsize>(header.size()));
  file.write(static_cast<const char*>(cpu.data_ptr()), static_cast<std::streamsize>(cpu.nbytes()));
  if (!file) throw Caffe2Error(path + ": write failed");
}

}  // namespace c2rt

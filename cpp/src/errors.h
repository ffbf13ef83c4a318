// The runtime's exceptions, one class per kind of failure (mirrors detectron2_export/errors.py).
//
// Messages follow "<where>: <field>=<got>, expected <form>". The executor prefixes the op's place in
// the net ("net 'x' op #3 'Conv' (inputs [...], outputs [...]): ...") and keeps the class.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace c2rt {

class Caffe2Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model file that cannot be read or parsed.
class ProtobufError : public Caffe2Error {
 public:
  using Caffe2Error::Caffe2Error;
};

// An op type the runtime does not implement.
class UnknownOperatorError : public Caffe2Error {
 public:
  using Caffe2Error::Caffe2Error;
};

// An OperatorDef argument that is unknown, missing, of the wrong type or out of range.
class OperatorArgumentError : public Caffe2Error {
 public:
  using Caffe2Error::Caffe2Error;
};

// An input blob of the wrong shape, dtype or count (also wraps ATen errors raised inside an op).
class OperatorInputError : public Caffe2Error {
 public:
  using Caffe2Error::Caffe2Error;
};

// The name of the runtime error class of `error` ("OperatorInputError", ...), or "" for other exceptions.
std::string error_class_name(const std::exception& error);

// A string as a one-line message fragment: single-quoted, with newlines, quotes and non-printable
// bytes escaped (\n, \', \xNN) and anything past 200 bytes cut ("...' (N bytes)"), so that no
// file can break the one `error:` line of the tools.
std::string quoted(const std::string& text);

// Python-like reprs used in messages: "(2, 3)", "(5,)", "['a', 'b']", "[1, 2]".
std::string shape_str(const std::vector<int64_t>& dims);
std::string names_str(const std::vector<std::string>& names);
std::string ints_str(const std::vector<int64_t>& values);

}  // namespace c2rt

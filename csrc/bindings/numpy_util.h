// numpy <-> C++ helpers of the bindings: strict input arrays and zero-copy outputs.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "qengine/errors.h"

namespace qengine_py {

namespace py = pybind11;

template <class T>
const char* dtype_name();
template <>
inline const char* dtype_name<int32_t>() {
  return "int32";
}
template <>
inline const char* dtype_name<int64_t>() {
  return "int64";
}
template <>
inline const char* dtype_name<uint8_t>() {
  return "uint8";
}
template <>
inline const char* dtype_name<uint16_t>() {
  return "uint16";
}
template <>
inline const char* dtype_name<uint64_t>() {
  return "uint64";
}
template <>
inline const char* dtype_name<float>() {
  return "float32";
}
template <>
inline const char* dtype_name<double>() {
  return "float64";
}

// A borrowed 1-D input array of exactly dtype T (C-contiguous). Keeps the array alive.
template <class T>
struct Input {
  py::array array;          // the numpy array (a reference keeps its buffer alive)
  const T* data = nullptr;  // its first element
  int64_t size = 0;         // its length
};

// Checks `obj` is a 1-D C-contiguous numpy array of dtype T: TypeError (not an array, wrong dtype)
// or ValueError (wrong shape / layout) naming `op` and `name`.
template <class T>
Input<T> input(const py::handle& obj, const char* op, const char* name) {
  // "op: name", built only for an error (the loop calls this ~10 times per iteration).
  auto what = [&] { return std::string(op) + ": " + name; };
  if (!py::isinstance<py::array>(obj)) {
    throw qengine::TypeError(what() + " must be a numpy array of dtype " + dtype_name<T>() +
                             ", got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  Input<T> in;
  in.array = py::reinterpret_borrow<py::array>(obj);
  if (!in.array.dtype().equal(py::dtype::of<T>())) {
    throw qengine::TypeError(what() + " must have dtype " + dtype_name<T>() + ", got " +
                             std::string(py::str(in.array.dtype())) + " (convert with .astype)");
  }
  if (in.array.ndim() != 1) {
    throw qengine::ValueError(what() + " must be 1-D, got " + std::to_string(in.array.ndim()) +
                              " dimensions");
  }
  if (!(in.array.flags() & py::array::c_style)) {
    throw qengine::ValueError(what() + " must be C-contiguous (use numpy.ascontiguousarray)");
  }
  in.size = static_cast<int64_t>(in.array.shape(0));
  in.data = static_cast<const T*>(in.array.data());
  return in;
}

// As input, or an absent array (data nullptr, size -1) for None: the core's "all zeros".
template <class T>
Input<T> optional_input(const py::handle& obj, const char* op, const char* name) {
  if (obj.is_none()) return Input<T>{py::array(), nullptr, -1};
  return input<T>(obj, op, name);
}

// One shared empty array of dtype T (an empty result costs an incref instead of an allocation
// and a capsule; nothing can be written into a 0-length array). Never freed: it outlives any use.
template <class T>
py::array empty_numpy() {
  static const auto* empty = new py::array_t<T>(0);
  return *empty;
}

// Moves a vector into a numpy array without copying (a capsule owns the vector).
template <class T, class A>
py::array to_numpy(std::vector<T, A>&& values) {
  if (values.empty()) return empty_numpy<T>();
  auto* heap = new std::vector<T, A>(std::move(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T, A>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {sizeof(T)}, heap->data(), owner);
}

// As to_numpy, as a numpy bool array (values 0 / 1).
inline py::array to_numpy_bool(std::vector<uint8_t>&& values) {
  auto* heap = new std::vector<uint8_t>(std::move(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<uint8_t>*>(p); });
  return py::array(py::dtype::of<bool>(), {static_cast<py::ssize_t>(heap->size())}, {1},
                   heap->data(), owner);
}

}  // namespace qengine_py

#include "args.h"

#include <cmath>
#include <limits>

#include "qengine/errors.h"

namespace qengine_py {

namespace {

// numpy's scalar base classes, looked up once and kept for the process lifetime (never released,
// so nothing touches a destroyed object at interpreter shutdown).
struct NumpyTypes {
  PyObject* integer;   // numpy.integer
  PyObject* floating;  // numpy.floating
  PyObject* bool_;     // numpy.bool_
};

const NumpyTypes& numpy_types() {
  static const NumpyTypes types = [] {
    py::module_ np = py::module_::import("numpy");
    auto keep = [&](const char* name) { return py::object(np.attr(name)).release().ptr(); };
    return NumpyTypes{keep("integer"), keep("floating"), keep("bool_")};
  }();
  return types;
}

bool instance_of(const py::handle& obj, PyObject* type) {
  const int r = PyObject_IsInstance(obj.ptr(), type);
  if (r < 0) throw py::error_already_set();
  return r == 1;
}

bool is_integer(const py::handle& obj) {
  return !is_bool(obj) && (PyLong_Check(obj.ptr()) || instance_of(obj, numpy_types().integer));
}

[[noreturn]] void wrong_type(const py::handle& obj, const char* op, const char* name,
                             const char* what) {
  throw qengine::TypeError(std::string(op) + ": " + name + " must be " + what + ", got " +
                           type_name(obj) + " (nothing is converted implicitly)");
}

// obj (an int or a numpy integer) as a Python int.
py::object as_pylong(const py::handle& obj) {
  if (PyLong_Check(obj.ptr())) return py::reinterpret_borrow<py::object>(obj);
  PyObject* index = PyNumber_Index(obj.ptr());
  if (index == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(index);
}

}  // namespace

std::string type_name(const py::handle& obj) {
  return std::string(py::str(py::type::of(obj).attr("__name__")));
}

bool is_bool(const py::handle& obj) {
  return PyBool_Check(obj.ptr()) || instance_of(obj, numpy_types().bool_);
}

Int int_arg(const py::handle& obj, const char* op, const char* name) {
  if (!PyLong_CheckExact(obj.ptr()) && !is_integer(obj)) wrong_type(obj, op, name, "an int");
  const py::object value = as_pylong(obj);
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow > 0) return Int{std::numeric_limits<int64_t>::max(), false};
  if (overflow < 0) return Int{std::numeric_limits<int64_t>::min(), false};
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return Int{static_cast<int64_t>(v), true};
}

Uint uint64_arg(const py::handle& obj, const char* op, const char* name) {
  if (!is_integer(obj)) wrong_type(obj, op, name, "an int");
  const py::object value = as_pylong(obj);
  const unsigned long long v = PyLong_AsUnsignedLongLong(value.ptr());
  if (PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_OverflowError)) throw py::error_already_set();
    PyErr_Clear();  // negative or >= 2**64
    return Uint{0, false};
  }
  return Uint{static_cast<uint64_t>(v), true};
}

double real_arg(const py::handle& obj, const char* op, const char* name) {
  if (PyFloat_Check(obj.ptr())) return PyFloat_AS_DOUBLE(obj.ptr());
  if (is_integer(obj)) {
    const py::object value = as_pylong(obj);
    const double v = PyLong_AsDouble(value.ptr());
    if (v == -1.0 && PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_OverflowError)) throw py::error_already_set();
      PyErr_Clear();  // an int beyond the double range: +-inf, refused as not finite
      const int negative = PyObject_RichCompareBool(value.ptr(), py::int_(0).ptr(), Py_LT);
      if (negative < 0) throw py::error_already_set();
      return negative ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    }
    return v;
  }
  if (!is_bool(obj) && instance_of(obj, numpy_types().floating)) {
    const double v = PyFloat_AsDouble(obj.ptr());
    if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return v;
  }
  wrong_type(obj, op, name, "a real number (int or float)");
}

bool bool_arg(const py::handle& obj, const char* op, const char* name) {
  if (!is_bool(obj)) wrong_type(obj, op, name, "a bool");
  const int v = PyObject_IsTrue(obj.ptr());
  if (v < 0) throw py::error_already_set();
  return v == 1;
}

std::string str_arg(const py::handle& obj, const char* op, const char* name) {
  if (!PyUnicode_Check(obj.ptr())) wrong_type(obj, op, name, "a str");
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(obj.ptr(), &size);
  if (data == nullptr) {
    PyErr_Clear();
    return "<not valid Unicode>";
  }
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace qengine_py

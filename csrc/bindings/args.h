// Scalar arguments of the engine interface (docs/search-semantics.md, section 9, "Arguments").
//
// The same rules as qengine/_args.py, which the reference engine, qengine.Forest and SearchConfig
// apply; nothing is coerced, so a float never becomes an int and a str never becomes a number:
//   int:  a Python int or a numpy integer, not a bool                          (else TypeError)
//   real: a Python int or float, a numpy integer or floating, not a bool      (else TypeError)
//   str:  a Python str                                                         (else TypeError)
//   bool: a Python bool or a numpy bool                                        (else TypeError)
// Values are range-checked by the caller (the core, mostly), after every argument's type.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace qengine_py {

namespace py = pybind11;

// An int argument. Values outside int64 are clamped to the nearest bound, which every range check
// of the core refuses like the value itself (an id, a count, a size); `exact` says whether the
// value was kept, for the arguments with no range of their own (payloads, seeds).
struct Int {
  int64_t value = 0;   // the value, clamped to [INT64_MIN, INT64_MAX]
  bool exact = false;  // false when clamped
};

// An int argument that must fit uint64 (a seed); `exact` false when it does not.
struct Uint {
  uint64_t value = 0;  // the value when exact, else 0
  bool exact = false;  // the value lies in [0, 2**64)
};

// The name of obj's type (for messages).
std::string type_name(const py::handle& obj);

// True for a Python bool or a numpy bool.
bool is_bool(const py::handle& obj);

// The checks above; `op` and `name` name the argument in the TypeError.
Int int_arg(const py::handle& obj, const char* op, const char* name);
Uint uint64_arg(const py::handle& obj, const char* op, const char* name);
double real_arg(const py::handle& obj, const char* op, const char* name);
bool bool_arg(const py::handle& obj, const char* op, const char* name);
// A str that is not valid Unicode text (lone surrogates) comes back as "<not valid Unicode>" (no
// name matches it, so the caller's ValueError for an unknown name follows, as on the reference).
std::string str_arg(const py::handle& obj, const char* op, const char* name);

}  // namespace qengine_py

// Exception types of the core. The bindings map them to Python exceptions:
//   TypeError -> TypeError, ValueError -> ValueError, IndexError -> IndexError,
//   CapacityError -> qengine.errors.CapacityError (a RuntimeError),
//   Error (the base, thrown as such for resource failures: a worker thread that cannot be
//   started) -> RuntimeError.
// Every batch operation validates its whole input before it changes anything, so when one of
// these is thrown every tree is exactly as it was before the call.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace qengine {

// Base of every error the core raises (on bad input: one of the subclasses below).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Wrong dtype (raised by the bindings; the core itself works on typed pointers).
class TypeError : public Error {
 public:
  using Error::Error;
};

// Wrong shape, value or state (expanding a terminal node, backing up a leaf not in flight...).
class ValueError : public Error {
 public:
  using Error::Error;
};

// A tree id or node id out of range.
class IndexError : public Error {
 public:
  using Error::Error;
};

// A tree would grow past SearchConfig::max_nodes, or a packed counter past its width.
class CapacityError : public Error {
 public:
  using Error::Error;
};

// "op: entry i: ", the prefix of an error about entry i of a batch call (docs 5.5: errors name
// the first failing entry in call order).
inline std::string entry_where(const char* op, int64_t i) {
  return std::string(op) + ": entry " + std::to_string(i) + ": ";
}

}  // namespace qengine

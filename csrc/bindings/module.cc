// qengine._core: the native search core. Users import qengine, never this module directly.
#include <pybind11/pybind11.h>

#include "qengine/errors.h"
#include "qengine/forest.h"

namespace qengine_py {
void register_forest(pybind11::module_& m);
void register_layout(pybind11::module_& m);
}  // namespace qengine_py

namespace py = pybind11;

namespace {
// qengine.errors.CapacityError, kept alive for the process lifetime (never released, so the
// translator never touches a destroyed object at interpreter shutdown).
PyObject* g_capacity_error = nullptr;
}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "qengine's native MCTS core (see docs/search-semantics.md).";
  py::object capacity_error = py::module_::import("qengine.errors").attr("CapacityError");
  g_capacity_error = capacity_error.release().ptr();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const qengine::CapacityError& e) {
      PyErr_SetString(g_capacity_error, e.what());
    } catch (const qengine::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const qengine::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const qengine::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const qengine::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "qengine: out of memory");
    }
  });
  qengine_py::register_layout(m);
  qengine_py::register_forest(m);
}

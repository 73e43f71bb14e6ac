// SearchConfig <-> Python dict (the keys of qengine.SearchConfig; enums as strings).
#pragma once

#include <pybind11/pybind11.h>

#include "qengine/config.h"

namespace qengine_py {

// In the order of qengine.SearchConfig: unknown keys (ValueError), then every value's type
// (TypeError; the rules of args.h), then the values (bad enum names, integers outside their
// range, SearchConfig::validate: ValueError). Missing keys keep their defaults.
qengine::SearchConfig config_from_dict(const pybind11::handle& config);

// The config as a dict of Python values.
pybind11::dict config_to_dict(const qengine::SearchConfig& config);

// The schema of QENGINE_CONFIG_FIELDS, one dict per field in order: name, kind ("str", "float",
// "int", "bool"), default (a Python value), choices (the enum names; empty otherwise), doc.
pybind11::tuple config_schema();

}  // namespace qengine_py

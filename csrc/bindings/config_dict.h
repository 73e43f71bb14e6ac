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

}  // namespace qengine_py

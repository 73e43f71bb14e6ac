"""Pure-Python reference engine: the executable specification of docs/search-semantics.md.

``ReferenceEngine`` implements the engine interface of section 9 with the semantics of sections
1-8 bit for bit (float32 node statistics, double selection, the splitmix64 noise, the hash
evaluator). It is slow and readable; the differential tests compare the native core against it.

Files, by phase: ``tree.py`` (node storage), ``select.py`` (rules, FPU, normalisation, Gumbel
sequential halving), ``ops.py`` (descent, backup, cancel, expansion, exhaustion), ``pairs.py``
(queries and preference pairs), ``tree_ops.py`` (re-root, prune, compact, reset),
``serialize.py`` (flat arrays), ``rng.py``, ``synthetic.py``, ``engine.py`` (validation and the
interface).
"""

from .engine import ReferenceEngine

__all__ = ["ReferenceEngine"]

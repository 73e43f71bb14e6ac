// Counter-based random numbers (docs/search-semantics.md, sections 7 and 8). Stateless hashes, so
// a tree's randomness depends only on (seed, tree, epoch, action), never on the thread count.
#pragma once

#include <cstdint>

namespace qengine {

// Steele et al.'s splitmix64 finaliser (uint64 wrap-around).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in (0, 1), never 0 or 1: ((h >> 11) + 0.5) * 2^-53.
inline double uniform(uint64_t seed, uint64_t tree, uint64_t epoch, uint64_t action) {
  const uint64_t h = splitmix64(seed ^ splitmix64(tree ^ splitmix64(epoch ^ splitmix64(action))));
  return (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;
}

// 32-bit integer hash of the synthetic evaluator (uint32 wrap-around).
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

}  // namespace qengine

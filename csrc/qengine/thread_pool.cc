#include "qengine/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <system_error>

#include "qengine/errors.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QENGINE_PAUSE() _mm_pause()
#else
#define QENGINE_PAUSE() ((void)0)
#endif

namespace qengine {
namespace {
// How long an idle thread spins before sleeping. A Python ask/expand/backup loop issues jobs a
// few tens of microseconds apart; a condition-variable wake-up costs about as much again.
constexpr auto kSpin = std::chrono::microseconds(50);
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  num_threads_ = std::clamp(num_threads, 1, kMaxThreads);
  errors_.resize(static_cast<size_t>(num_threads_));
  threads_.reserve(static_cast<size_t>(num_threads_ - 1));
  // A throwing constructor runs no destructor: without this cleanup the members would be
  // destroyed under running workers (glibc's pthread_cond_destroy then waits forever for the
  // workers sleeping on wake_, and a joinable std::thread terminates the process).
  try {
    for (int i = 1; i < num_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
  } catch (const std::system_error& e) {
    const size_t started = threads_.size();
    stop_workers();
    throw Error("could not start worker thread " + std::to_string(started + 1) + " of " +
                std::to_string(num_threads_ - 1) + " (" + e.what() +
                "); ask for fewer threads (num_threads) or raise the process's memory / thread "
                "limits");
  } catch (...) {
    stop_workers();
    throw;
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Wait for a new generation: spin, then sleep.
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    int polls = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      QENGINE_PAUSE();
      if ((++polls & 63) == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        break;
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    try {
      (*job_)(index);
    } catch (...) {
      errors_[static_cast<size_t>(index)] = std::current_exception();
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::run(const std::function<void(int)>& fn) {
  if (num_threads_ == 1) {
    fn(0);
    return;
  }
  for (auto& e : errors_) e = nullptr;
  job_ = &fn;
  remaining_.store(num_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  try {
    fn(0);
  } catch (...) {
    errors_[0] = std::current_exception();
  }
  const auto spin_until = std::chrono::steady_clock::now() + kSpin;
  int polls = 0;
  while (remaining_.load(std::memory_order_acquire) != 0) {
    QENGINE_PAUSE();
    if ((++polls & 63) == 0 && std::chrono::steady_clock::now() > spin_until) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
      break;
    }
  }
  job_ = nullptr;
  for (auto& e : errors_) {
    if (e) std::rethrow_exception(e);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t min_per_thread) {
  if (n <= 0) return;
  const int parts = static_cast<int>(std::min<int64_t>(
      num_threads_, std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread))));
  if (parts <= 1) {
    fn(0, n, 0);
    return;
  }
  run([&](int i) {
    if (i < parts) fn(split(n, parts, i), split(n, parts, i + 1), i);
  });
}

}  // namespace qengine

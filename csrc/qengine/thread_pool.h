// A persistent pool of std::threads for batch operations over trees.
//
// Work is partitioned statically (thread i gets trees [B*i/T, B*(i+1)/T)); each tree is only ever
// touched by the thread that owns its range and per-tree results never depend on other trees, so
// results are identical for every thread count. Workers spin briefly after a job (the ask / expand
// / backup calls of a Python loop come back-to-back) and then sleep on a condition variable.
//
// Construction is all-or-nothing: if a worker thread cannot be started (memory or process limits),
// the workers already started are stopped and joined before the error propagates, so a failed
// pool never leaves a thread waiting on a condition variable that is being destroyed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qengine {

// Most threads a pool runs (the caller included); num_threads 0 asks for the hardware
// concurrency, capped here.
constexpr int kMaxThreads = 1024;

class ThreadPool {
 public:
  // `num_threads` threads in all, the caller included (0: hardware concurrency, at most
  // kMaxThreads; callers validate the range). Throws qengine::Error when a worker cannot be
  // started, after stopping the ones that were.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Runs fn(thread_index) on every thread (index 0 on the caller) and waits for all. If any call
  // throws, the exception of the lowest thread index is rethrown after all have finished.
  void run(const std::function<void(int)>& fn);

  // Calls fn(begin, end, thread_index) on a static partition of [0, n). Runs inline when n is
  // small (fewer than `min_per_thread` items per extra thread) or the pool has one thread.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t min_per_thread = 1);

  // Start of thread i's range in a static partition of [0, n) into `parts` pieces.
  static int64_t split(int64_t n, int parts, int i) { return n * i / parts; }

 private:
  void worker(int index);
  // Wakes every started worker with stop_ set and joins it (destructor and failed construction).
  void stop_workers();

  int num_threads_;                                // threads in all, the caller included
  std::vector<std::thread> threads_;               // workers 1 .. num_threads_-1
  std::mutex mutex_;                               // guards generation_ / stop_ for sleeping
  std::condition_variable wake_;                   // workers sleep here between jobs
  std::condition_variable done_;                   // the caller sleeps here until a job ends
  std::atomic<uint64_t> generation_{0};            // +1 per job
  std::atomic<int> remaining_{0};                  // workers still running the current job
  std::atomic<bool> stop_{false};                  // set by the destructor
  const std::function<void(int)>* job_ = nullptr;  // the current job
  std::vector<std::exception_ptr> errors_;         // per thread, the exception of the current job
};

}  // namespace qengine

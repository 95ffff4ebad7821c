/* The integration suite every loop adapter passes, on its real host loop.
   Each test_<adapter>.c fills in an adapter_ops_t for its loop and runs
   suite_run() plus tests of its own (as SUITE_TEST). */
#ifndef FUT_TEST_ADAPTER_SUITE_H
#define FUT_TEST_ADAPTER_SUITE_H

#include "common.h"

typedef void (*suite_fn)(void *arg);

typedef struct adapter_ops {
  /* A fresh host loop with a fresh adapter on it, in suite_adapter. */
  void (*open)(void);
  /* The adapter's fut_<adapter>_loop, _close and _free (NULL if it has no
     free function), and the name its misuse reports give _free. */
  fut_loop_t *(*loop)(void *adapter);
  int (*close)(void *adapter);
  void (*free)(void *adapter);
  const char *free_name;
  /* One iteration of the host loop that never blocks. */
  void (*iterate)(void);
  /* Run the host loop until it returns by itself, asserting it returned
     because nothing is left to do: uv_run/ev_run return 0 (no live handle
     or watcher: the adapter does not keep the loop alive); GLib has nothing
     left to dispatch. */
  void (*run)(void);
  /* Keep the host loop alive, with a handle or source of the test's own
     that calls about_to_sleep(arg) each time the loop is about to poll,
     until release() (which may be called from inside a callback). */
  void (*hold)(suite_fn about_to_sleep, void *arg);
  void (*release)(void);
  /* fd >= 0: watch fd, which stays readable (a busy socket), with a source
     or watcher of the test's own at the host's default priority, counting
     its calls in suite_busy_calls; -1: stop watching it. */
  void (*busy)(int fd);
  /* Run the host loop, blocking while idle, until *done; then assert the
     loop returned by itself (see run). Guarded by the meson test timeout.
     NULL: run() does that, on a loop that runs until nothing is left. */
  void (*run_until)(const bool *done);
  /* Free the host loop, asserting it has nothing of the adapter's left
     (uv_loop_close == 0): the suite has freed the adapter, or closed it if
     it has no free function. */
  void (*destroy)(void);
} adapter_ops_t;

/* The adapter under test; NULL once a test has released it. */
extern void *suite_adapter;
extern int suite_busy_calls;

/* cmocka setup/teardown: counting allocator + fresh slots and log + open;
   free (or close) the adapter + destroy + no library block left. */
int suite_setup(void **state);
int suite_teardown(void **state);

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, suite_setup, \
                                                       suite_teardown)
/* Run the suite on the adapter `ops` describes (with the free test if it
   has a free function), and make SUITE_TEST open and destroy that adapter.
   Returns the number of tests that failed. */
int suite_run(const adapter_ops_t *ops);

#endif

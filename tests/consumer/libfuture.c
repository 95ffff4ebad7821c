/* Consumer program for <libfuture.h>: the bundled loop. See consumer.h;
   .ci/consume.sh builds it against an installed copy and as a meson
   subproject, tests/api after the header in C99, C11 and C++11. */
#include <libfuture.h>

#include "consumer.h"

int main(void)
{
  consumer_t c;
  fut_mainloop_t *m = fut_mainloop_new();
  fut_t *f = m ? fut_create(fut_mainloop_loop(m)) : NULL;
  int failed = consumer_watch(&c, f);
  if (!failed) {
    if (fut_mainloop_call_later(m, 0, consumer_resolve, &c, NULL) != FUT_OK ||
        fut_mainloop_run_until_done(m, f) != FUT_OK)
      fputs("consumer: the bundled loop did not run\n", stderr);
    failed = consumer_verdict(&c, "bundled loop");
  }
  fut_unref(f);
  fut_mainloop_free(m);
  return failed;
}

// Boost.Context's fcontext round trip for bench_fiber.c: the same shape as
// libfuture's (jump in, jump back out), on a malloc'ed stack.
#include <boost/context/detail/fcontext.hpp>

#include <cstdlib>

namespace ctx = boost::context::detail;

extern "C" void bench_boost_switch(long n);

namespace {

volatile long boost_sink;

void bouncer(ctx::transfer_t t)
{
  for (;;)
    t = ctx::jump_fcontext(t.fctx, nullptr);
}

} // namespace

void bench_boost_switch(long n)
{
  const std::size_t size = 256 * 1024;
  static char *stack = static_cast<char *>(std::malloc(size));
  if (!stack)
    std::abort();
  // make_fcontext takes the top of the stack: it grows down.
  ctx::fcontext_t f = ctx::make_fcontext(stack + size, size, bouncer);
  for (long i = 0; i < n; i++) {
    ctx::transfer_t t = ctx::jump_fcontext(f, nullptr);
    f = t.fctx;
    boost_sink = boost_sink + 1;
  }
}

/* uv_getaddrinfo.c: a name lookup exposed as a future, with cancellation.

     async def main():
         first = loop.create_task(loop.getaddrinfo("localhost", None))
         second = loop.create_task(loop.getaddrinfo("localhost", None))
         second.cancel("no longer needed")
         ...

   resolve() starts a uv_getaddrinfo request and returns a future for its
   result (a struct addrinfo list, freed with the future). Cancelling the
   future cancels the request: a done-callback calls uv_cancel(). That may
   come too late (the lookup already runs on libuv's thread pool); the
   request's callback then finds the future done and frees the answer
   nobody wants. Either way the future says "cancelled", so the output does
   not depend on the race. Only "localhost" is looked up: no network. */
#include <arpa/inet.h>
#include <libfuture-uv.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

static const fut_exc_type_t LOOKUP_ERROR = {"LookupError", &FUT_EXC_ERROR};

/* One lookup. Freed when both of its users are done with it: the request
   (its callback always runs, even when cancelled) and the future's
   done-callback (it runs once the future is done, however that happens). */
typedef struct lookup {
  uv_getaddrinfo_t req;
  fut_t *fut;   /* a reference of the lookup's own */
  int users;
  bool pending; /* the request's callback has not run yet */
} lookup_t;

static void lookup_release(void *p)
{
  lookup_t *op = p;
  if (--op->users == 0) {
    fut_unref(op->fut);
    free(op);
  }
}

static void free_addrinfo(void *p)
{
  uv_freeaddrinfo(p);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  lookup_t *op = req->data;
  op->pending = false;
  if (fut_done(op->fut)) /* cancelled; res is NULL if uv_cancel won */
    uv_freeaddrinfo(res);
  else if (status < 0)
    (void)fut_set_exception(op->fut, fut_exc_new(&LOOKUP_ERROR, status, "%s",
                                                 uv_strerror(status)));
  else
    (void)fut_set_result(op->fut, res, free_addrinfo);
  lookup_release(op);
}

/* Runs once the future is done: if it was cancelled, so is the request. */
static void on_future_done(fut_t *f, void *data)
{
  lookup_t *op = data;
  if (fut_cancelled(f) && op->pending)
    (void)uv_cancel((uv_req_t *)&op->req);
  lookup_release(op);
}

/* A future for host's IPv4 addresses, or NULL when out of memory. */
static fut_t *resolve(uv_loop_t *uv, fut_loop_t *loop, const char *host)
{
  lookup_t *op = malloc(sizeof *op);
  fut_t *f = fut_create(loop);
  if (!op || !f) {
    free(op);
    fut_unref(f);
    return NULL;
  }
  *op = (lookup_t){.fut = fut_ref(f), .users = 1};
  op->req.data = op;
  /* destroy_data: if the callback can never run, the lookup still goes. */
  if (fut_add_done_callback_full(f, on_future_done, op, NULL,
                                 lookup_release) != FUT_OK) {
    lookup_release(op);
    fut_unref(f);
    return NULL;
  }
  const struct addrinfo hints = {.ai_family = AF_INET,
                                 .ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(uv, &op->req, on_resolved, host, NULL, &hints);
  if (rc == 0) {
    op->users++;
    op->pending = true;
  } else {
    (void)fut_set_exception(f, fut_exc_new(&LOOKUP_ERROR, rc, "%s",
                                           uv_strerror(rc)));
  }
  return f;
}

/* The code after `await`. */
static void print_lookup(fut_t *f, void *data)
{
  const char *name = data;
  void *value;
  fut_exc_t *exc;
  int rc = fut_result(f, &value);
  if (rc == FUT_OK) {
    const struct addrinfo *ai = value;
    char text[INET_ADDRSTRLEN];
    const struct sockaddr_in *sin = (const void *)ai->ai_addr;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    printf("%s lookup: localhost is %s\n", name, text);
  } else if (rc == FUT_ECANCELLED) {
    printf("%s lookup: cancelled (%s)\n", name, fut_cancel_message(f));
  } else {
    (void)fut_exception(f, &exc);
    printf("%s lookup: failed: %s\n", name, fut_exc_message(exc));
  }
}

int main(void)
{
  uv_loop_t *uv = uv_default_loop();
  fut_uv_t *adapter = fut_uv_new(uv);
  if (!adapter)
    return EXIT_FAILURE;
  fut_loop_t *loop = fut_uv_loop(adapter);

  static char first_name[] = "first", second_name[] = "second";
  fut_t *first = resolve(uv, loop, "localhost");
  fut_t *second = resolve(uv, loop, "localhost");
  int rc = first && second ? FUT_OK : FUT_ENOMEM;
  if (rc == FUT_OK)
    rc = fut_add_done_callback(first, print_lookup, first_name, NULL);
  if (rc == FUT_OK)
    rc = fut_add_done_callback(second, print_lookup, second_name, NULL);
  if (rc != FUT_OK) {
    fprintf(stderr, "uv_getaddrinfo: %s\n", fut_strerror(rc));
    return EXIT_FAILURE;
  }
  fut_cancel(second, "no longer needed");

  /* Returns when both requests have finished and every callback ran. */
  uv_run(uv, UV_RUN_DEFAULT);
  int status = fut_done(first) && fut_cancelled(second) ? EXIT_SUCCESS
                                                        : EXIT_FAILURE;
  fut_unref(first);
  fut_unref(second);
  fut_uv_free(adapter);
  uv_run(uv, UV_RUN_DEFAULT);
  if (uv_loop_close(uv) != 0)
    status = EXIT_FAILURE;
  return status;
}

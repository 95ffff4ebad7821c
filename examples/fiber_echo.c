/* fiber_echo.c: a line-by-line protocol handler written as straight-line
   C, on a fiber task. read_line() awaits the next line three calls deep,
   something a stackless body cannot do; the handler keeps its state in
   ordinary locals.

   The "connection" is simulated: the bundled loop's timers deliver the
   client's lines one by one, 10 ms apart. The protocol:
     HELLO <name>   -> "hi <name>"
     ECHO <text>    -> "<text>"
     SUM <a> <b>    -> "<a + b>"
     QUIT           -> "bye", and the handler returns the number of lines */
#include <libfuture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const client[] = {"HELLO ada", "ECHO straight-line C",
                                     "SUM 20 22", "NOPE", "QUIT"};
enum { CLIENT_LINES = sizeof client / sizeof client[0] };

static fut_mainloop_t *loop;

static void check(bool ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "fiber_echo: %s failed\n", what);
    exit(EXIT_FAILURE);
  }
}

/* ---- the simulated connection ------------------------------------------ */

typedef struct conn {
  int sent;        /* client lines delivered so far */
  fut_t *incoming; /* the line being waited for, or NULL */
} conn_t;

static void deliver(void *arg)
{
  conn_t *c = arg;
  fut_t *f = c->incoming;
  c->incoming = NULL;
  (void)fut_set_result(f, (void *)client[c->sent++], NULL);
  fut_unref(f);
}

/* A future for the next line, which arrives 10 ms from now. */
static fut_t *next_line(conn_t *c)
{
  fut_t *f = fut_create(fut_mainloop_loop(loop));
  check(f != NULL, "fut_create");
  c->incoming = fut_ref(f);
  check(fut_mainloop_call_later(loop, 10, deliver, c, NULL) == FUT_OK,
        "fut_mainloop_call_later");
  return f;
}

/* ---- helpers that await, as deep as they like --------------------------- */

/* Waits for the next line; NULL when the connection fails. */
static const char *read_line(conn_t *c)
{
  fut_t *f = next_line(c);
  const char *line = NULL;
  if (fut_await(f) == FUT_OK) {
    void *v;
    fut_result(f, &v);
    line = v;
  }
  fut_unref(f);
  return line;
}

static bool starts_with(const char *s, const char *word, const char **rest)
{
  size_t n = strlen(word);
  if (strncmp(s, word, n) != 0 || (s[n] != ' ' && s[n] != '\0'))
    return false;
  *rest = s[n] ? s + n + 1 : s + n;
  return true;
}

/* Reads one command and answers it; false once the client is done. */
static bool serve_one(conn_t *c, int *lines)
{
  const char *line = read_line(c);
  if (!line)
    return false;
  (*lines)++;
  printf("< %s\n", line);
  const char *arg;
  long a, b;
  if (starts_with(line, "HELLO", &arg)) {
    printf("> hi %s\n", arg);
  } else if (starts_with(line, "ECHO", &arg)) {
    printf("> %s\n", arg);
  } else if (starts_with(line, "SUM", &arg) &&
             sscanf(arg, "%ld %ld", &a, &b) == 2) {
    printf("> %ld\n", a + b);
  } else if (starts_with(line, "QUIT", &arg)) {
    printf("> bye\n");
    return false;
  } else {
    printf("> error: unknown command\n");
  }
  return true;
}

/* The handler: a plain loop, its count a plain local. */
static void handler(fut_t *task, void *arg)
{
  conn_t *c = arg;
  int lines = 0;
  while (serve_one(c, &lines))
    continue;
  fut_task_return(task, (void *)(intptr_t)lines, NULL);
}

int main(void)
{
  conn_t c = {0};
  loop = fut_mainloop_new();
  check(loop != NULL, "fut_mainloop_new");
  fut_t *t = fut_spawn_fiber(fut_mainloop_loop(loop), handler, &c, NULL, 0);
  check(t != NULL, "fut_spawn_fiber");
  check(fut_mainloop_run_until_done(loop, t) == FUT_OK, "the loop");
  void *lines = NULL;
  check(fut_result(t, &lines) == FUT_OK, "the handler");
  printf("handled %d lines of %d\n", (int)(intptr_t)lines, CLIENT_LINES);
  fut_unref(t);
  fut_mainloop_free(loop);
  return 0;
}

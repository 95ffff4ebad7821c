/* The composition fuzzer's shared declarations: compose.c drives the
   library and holds the harness; compose_model.c is the model. */
#ifndef CZ_COMPOSE_H
#define CZ_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libfuture.h>

#define CZ_MAXF 48    /* futures per input */
#define CZ_MAXR 96    /* registrations on one future */
#define CZ_MAXQ 4096  /* units queued at once */
#define CZ_MAXVAL 160 /* result values per input */
#define CZ_MAXIN 6    /* inputs per combinator */
#define CZ_MAXLINK 64 /* follow links per input */
#define CZ_MAXLOG 16  /* what one unit's callbacks did */
#define CZ_MAXOPS 400
#define CZ_KEYS 3

enum { RO_PLAIN, RO_THEN, RO_COMB, RO_SHIELD, RO_OUT };
/* What sits on a future, in registration order: the input's callback
   (a: key), a continuation (a: its future), a combinator (a: its future),
   a follow link's two sides (a: the link), an as_completed iterator
   (a: the iterator). */
enum { RG_HCB, RG_THEN, RG_COMB, RG_FSRC, RG_FDST, RG_AC };
enum {
  CB_GATHER,
  CB_GATHER_ALL,
  CB_WAIT_ALL,
  CB_WAIT_FIRST,
  CB_WAIT_EXC,
  CB_RACE,
  CB_ANY
};

typedef struct cz_reg {
  uint8_t kind;
  int a;
} cz_reg_t;

typedef struct cz_mf {
  fut_t *p;
  int role;
  int state;          /* fut_state_t */
  bool has_exc;
  void *val;          /* FINISHED with a result (or arr >= 0) */
  int arr;            /* the result is combinator arr's input array */
  fut_exc_t *exc;     /* NULL until known (the library made it) */
  bool exc_invalid;   /* an InvalidStateError the library made */
  const char *cmsg;   /* CANCELLED, or a gather's CancelledError */
  int src;            /* fut_source, or -1 */
  cz_reg_t regs[CZ_MAXR];
  int nregs;
  bool following;
  int link;
  /* RO_THEN, RO_SHIELD */
  int tsrc;           /* -1 once settled */
  int it;             /* RO_OUT: its iterator while it waits, else -1 */
  int held;           /* RO_SHIELD: its source, held until the end */
  unsigned on;
  int destroyed;      /* destroy_data runs expected */
  /* RO_COMB */
  int kind, nin, left;
  int in[CZ_MAXIN];
} cz_mf_t;

#define CZ_MAXIT 4 /* as_completed iterators per input */

/* An as_completed iterator: inputs done and not handed out wait in
   ring[], outputs not served in waiting[], both in order. */
typedef struct cz_it {
  fut_as_completed_t *p;
  bool freed;
  int nin, promised;
  int in[CZ_MAXIN];
  int ring[CZ_MAXIN], nring;
  int waiting[CZ_MAXF], nwaiting;
} cz_it_t;

typedef struct cz_link {
  int dst, src; /* -1 once that side let go */
} cz_link_t;

/* A unit in the loop's FIFO: a registration of `fut`, detached. */
typedef struct cz_unit {
  cz_reg_t reg;
  int fut;
} cz_unit_t;

enum { LG_HCB, LG_THEN };
/* What a callback or continuation did in the library, for the model. */
typedef struct cz_log {
  int kind;
  fut_t *a, *b; /* the future (and a continuation's next) */
  int id;       /* the key, or the continuation's data slot */
  int action, target, val, rc;
  fut_exc_t *exc;
} cz_log_t;

typedef struct cz {
  const uint8_t *in;
  size_t n, pos;
  int ops;
  cz_mf_t f[CZ_MAXF];
  int nf, nval;
  cz_link_t links[CZ_MAXLINK];
  cz_it_t its[CZ_MAXIT];
  int nits;
  int nlinks;
  cz_unit_t units[CZ_MAXQ];
  int uh, ut;
  cz_log_t log[CZ_MAXLOG];
  int nlog, ilog;
} cz_t;

extern cz_t cz;

_Noreturn void cz_fail(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
uint8_t cz_byte(void);
void cz_note_taken(int v);
void *cz_val(int v); /* the address of value v */
int cz_destroyed(int k);
int cz_queued(void);

/* ---- the model (compose_model.c): each returns what the library should
   have returned ---- */
/* The outcome is the library's own: fut_set_* / fut_follow on it. */
bool cz_m_private(int f);
int cz_m_set_result(int f, int v);
int cz_m_set_exception(int f, fut_exc_t *e);
int cz_m_cancel(int f, const char *msg);
int cz_m_add(int f, int key);
int cz_m_remove(int f, int key);
int cz_m_follow(int dst, int src);
void cz_m_then(int next, int src, unsigned on);
/* fut_shield of a pending f: s is the new future. */
void cz_m_shield(int s, int f);
void cz_m_combine(int g, int kind, const int *in, int n);
/* fut_as_completed_new / _next / _free. next returns whether the model
   expects a future; out is the model index it was given. */
void cz_m_ac_new(int it, const int *in, int n);
bool cz_m_ac_can_next(int it);
void cz_m_ac_next(int it, int out);
void cz_m_ac_free(int it);
/* The unit the library just ran, replaying its log. */
void cz_m_run_one(void);
/* Does `from` hold, through references the library keeps until a future
   is destroyed, a path to `to`? Making `to` follow `from` would then
   close a cycle that nothing frees (no garbage collector): the input
   does not ask for it. */
bool cz_m_reaches(int from, int to);
void cz_check_rc(const char *what, int got, int want);
/* Library and model agree on every future and on the queue. */
void cz_compare(void);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

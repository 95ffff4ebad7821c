/* The bundled loop's timer store: see timers.h for its shape. A pending
   timer costs one 56-byte slot and a 4-byte heap entry, in one block that
   doubles (so up to twice that at the worst count); nothing else is
   allocated per timer. */
#include "timers.h"

#include <string.h>

enum { TM_FREE = 0, TM_PENDING = 1, TM_DUE = 2, TM_STATE = 3, TM_GEN = 4 };

#define TM_INITIAL_CAP 16u
/* FUT__TM_NONE is never an index. */
#define TM_MAX_CAP (UINT32_MAX / 2 + 1)

static unsigned tm_state(const fut__tm_slot_t *s)
{
  return s->gen & TM_STATE;
}

static void tm_set_state(fut__tm_slot_t *s, unsigned state)
{
  s->gen = (s->gen & ~(uint32_t)TM_STATE) | state;
}

void fut__tm_init(fut__timers_t *t)
{
  memset(t, 0, sizeof *t);
  t->free_head = t->due_head = t->due_tail = FUT__TM_NONE;
}

/* ---- handles ---- */

static void *handle_of(const fut__timers_t *t, uint32_t i)
{
  uintptr_t h = (uintptr_t)i + 1;
#if UINTPTR_MAX > UINT32_MAX
  h |= (uintptr_t)(t->slots[i].gen >> 2) << 32;
#else
  (void)t;
#endif
  return (void *)h;
}

/* The live slot a handle names, or FUT__TM_NONE. */
static uint32_t slot_of(const fut__timers_t *t, const void *handle)
{
  uintptr_t h = (uintptr_t)handle;
  uint32_t i = (uint32_t)h - 1;
  if (i >= t->nslots)
    return FUT__TM_NONE;
#if UINTPTR_MAX > UINT32_MAX
  if (h >> 32 != t->slots[i].gen >> 2)
    return FUT__TM_NONE;
#endif
  return tm_state(&t->slots[i]) == TM_FREE ? FUT__TM_NONE : i;
}

/* ---- the heap ---- */

static bool before(const fut__timers_t *t, uint32_t a, uint32_t b)
{
  const fut__tm_slot_t *x = &t->slots[a], *y = &t->slots[b];
  return x->deadline != y->deadline ? x->deadline < y->deadline
                                    : x->seq < y->seq;
}

static void place(fut__timers_t *t, uint32_t pos, uint32_t slot)
{
  t->heap[pos] = slot;
  t->slots[slot].link = pos;
}

/* Move `slot`, to be stored at `pos`, up or down until the order holds. */
static void sift(fut__timers_t *t, uint32_t pos, uint32_t slot)
{
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 2;
    if (!before(t, slot, t->heap[parent]))
      break;
    place(t, pos, t->heap[parent]);
    pos = parent;
  }
  /* pos < n <= 2^31, so 2 * pos + 2 cannot wrap. */
  for (;;) {
    uint32_t c = 2 * pos + 1;
    if (c >= t->n)
      break;
    if (c + 1 < t->n && before(t, t->heap[c + 1], t->heap[c]))
      c++;
    if (!before(t, t->heap[c], slot))
      break;
    place(t, pos, t->heap[c]);
    pos = c;
  }
  place(t, pos, slot);
}

/* Take the entry at heap position pos out of the heap. */
static void heap_remove(fut__timers_t *t, uint32_t pos)
{
  uint32_t last = t->heap[--t->n];
  if (pos < t->n)
    sift(t, pos, last);
}

/* ---- slots ---- */

static void slot_free(fut__timers_t *t, uint32_t i)
{
  fut__tm_slot_t *s = &t->slots[i];
  s->gen = (s->gen + TM_GEN) & ~(uint32_t)TM_STATE; /* TM_FREE */
  s->link = t->free_head;
  t->free_head = i;
}

/* Make sure a slot is free. Slots and heap share one block (the heap after
   `cap` slots), so a growth either happens whole or not at all. */
static bool reserve(fut__timers_t *t)
{
  if (t->free_head != FUT__TM_NONE || t->nslots < t->cap)
    return true;
  if (t->cap >= TM_MAX_CAP)
    return false;
  uint32_t cap = t->cap ? t->cap * 2 : TM_INITIAL_CAP;
  size_t per = sizeof *t->slots + sizeof *t->heap;
  if (cap > SIZE_MAX / per)
    return false;
  fut__tm_slot_t *slots = fut__realloc(t->slots, (size_t)cap * per);
  if (!slots)
    return false;
  uint32_t *heap = (uint32_t *)(void *)(slots + cap);
  memmove(heap, slots + t->cap, (size_t)t->n * sizeof *heap);
  t->slots = slots;
  t->heap = heap;
  t->cap = cap;
  return true;
}

void *fut__tm_add(fut__timers_t *t, uint64_t deadline, fut_work_fn fn,
                  void *arg, void *context, fut_free_fn destroy_arg)
{
  if (!reserve(t))
    return NULL;
  /* A pending timer holds a slot, so the heap has room too. */
  uint32_t i = t->free_head;
  if (i == FUT__TM_NONE) {
    i = t->nslots++;
    t->slots[i].gen = TM_FREE;
  } else {
    t->free_head = t->slots[i].link;
  }
  fut__tm_slot_t *s = &t->slots[i];
  s->deadline = deadline;
  s->seq = t->next_seq++;
  s->fn = fn;
  s->arg = arg;
  s->context = context;
  s->destroy_arg = destroy_arg;
  tm_set_state(s, TM_PENDING);
  sift(t, t->n++, i);
  return handle_of(t, i);
}

void fut__tm_cancel(fut__timers_t *t, void *handle)
{
  uint32_t i = slot_of(t, handle);
  if (i == FUT__TM_NONE)
    return;
  fut__tm_slot_t *s = &t->slots[i];
  if (tm_state(s) == TM_PENDING) {
    heap_remove(t, s->link);
    slot_free(t, i);
  } else if (s->fn) {
    /* Due: the slot stays in the due list, which skips and frees it. */
    s->fn = NULL;
  }
}

void fut__tm_collect(fut__timers_t *t, uint64_t now)
{
  while (t->n > 0 && t->slots[t->heap[0]].deadline <= now) {
    uint32_t i = t->heap[0];
    heap_remove(t, 0);
    tm_set_state(&t->slots[i], TM_DUE);
    t->slots[i].link = FUT__TM_NONE;
    if (t->due_tail == FUT__TM_NONE)
      t->due_head = i;
    else
      t->slots[t->due_tail].link = i;
    t->due_tail = i;
  }
}

bool fut__tm_next_due(fut__timers_t *t, fut__tm_unit_t *out)
{
  while (t->due_head != FUT__TM_NONE) {
    uint32_t i = t->due_head;
    fut__tm_slot_t *s = &t->slots[i];
    t->due_head = s->link;
    if (t->due_head == FUT__TM_NONE)
      t->due_tail = FUT__TM_NONE;
    *out = (fut__tm_unit_t){s->fn, s->arg, s->context};
    slot_free(t, i);
    if (out->fn)
      return true;
  }
  return false;
}

bool fut__tm_drop(fut__timers_t *t, void **arg, fut_free_fn *destroy_arg)
{
  if (t->n == 0)
    return false;
  /* The last entry: removing it keeps the heap in order as it is. */
  uint32_t i = t->heap[--t->n];
  *arg = t->slots[i].arg;
  *destroy_arg = t->slots[i].destroy_arg;
  slot_free(t, i);
  return true;
}

void fut__tm_fini(fut__timers_t *t)
{
  fut__free(t->slots);
  fut__tm_init(t);
}

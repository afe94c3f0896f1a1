/* Per-graph rigid transform kernels: out_i = R_g x_i (+ t_g), where g is the
 * graph of row i. x, out: [N, 3] row-major; R: [B, 3, 3] row-major; t: [B, 3]
 * or NULL. Graph membership is given either by CSR offsets (ptr, [B + 1],
 * rows sorted by graph) or by a per-row index ([N]).
 *
 * Plain C99, no Python or torch headers, no OpenMP pragmas and no library
 * dependency: compiled by torch_geometric_remul._kernels and called through
 * ctypes (which releases the GIL). To run on several threads it borrows the
 * OpenMP runtime that torch has already loaded: the loader passes the
 * addresses of that runtime's GOMP_parallel, omp_get_thread_num and
 * omp_get_num_threads (the GNU OpenMP ABI, also exported by LLVM's and
 * Intel's runtimes) to rigid_set_parallel. The work then runs on torch's own
 * thread team; no second runtime or thread pool ever exists. Without them,
 * everything runs on the calling thread.
 *
 * Both entry points validate the graph assignment while they read it, so
 * that the caller needs no separate pass over ptr/index: they return -1 on
 * success, else the smallest offending position (a graph g whose range
 * ptr[g]..ptr[g+1] is decreasing or outside [0, N], or a row i whose index
 * is outside [0, B)). The ptr entry points first check the ends, ptr[0] == 0
 * and ptr[B] == N (otherwise some rows would belong to no graph and stay
 * unwritten), and return B, writing nothing, when they do not hold. Rows of
 * valid graphs are written otherwise; nothing is ever read or written out of
 * bounds. */
#include <stddef.h>
#include <stdint.h>

#define RIGID_ABI_VERSION 4
#define MAX_THREADS 256

#define RIGID_ROW(T)                                                        \
  {                                                                         \
    const T a = x[3 * i], c = x[3 * i + 1], d = x[3 * i + 2];               \
    out[3 * i] = r0 * a + r1 * c + r2 * d + t0;                             \
    out[3 * i + 1] = r3 * a + r4 * c + r5 * d + t1;                         \
    out[3 * i + 2] = r6 * a + r7 * c + r8 * d + t2;                         \
  }

#define LOAD_PARAMS(T, g)                                                   \
  const T *r = R + 9 * (g);                                                 \
  const T r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3], r4 = r[4],            \
          r5 = r[5], r6 = r[6], r7 = r[7], r8 = r[8];                       \
  const T t0 = t ? t[3 * (g)] : (T)0, t1 = t ? t[3 * (g) + 1] : (T)0,       \
          t2 = t ? t[3 * (g) + 2] : (T)0;

/* Serial kernels over a chunk: graphs [lo, hi) for ptr, rows [lo, hi) for
 * index. Each returns the first bad position in its chunk, or -1. */
#define DEFINE_SERIAL(T, SUFFIX)                                            \
  static int64_t ptr_chunk_##SUFFIX(const T *restrict x, T *restrict out,   \
                                    const T *restrict R,                    \
                                    const T *restrict t,                    \
                                    const int64_t *restrict ptr,            \
                                    int64_t lo, int64_t hi, int64_t N) {    \
    int64_t bad = -1;                                                       \
    for (int64_t g = lo; g < hi; ++g) {                                     \
      const int64_t start = ptr[g], end = ptr[g + 1];                       \
      if (start < 0 || end < start || end > N) {                            \
        if (bad < 0) bad = g;                                               \
        continue;                                                           \
      }                                                                     \
      LOAD_PARAMS(T, g)                                                     \
      for (int64_t i = start; i < end; ++i) RIGID_ROW(T)                    \
    }                                                                       \
    return bad;                                                             \
  }                                                                         \
  static int64_t index_chunk_##SUFFIX(const T *restrict x, T *restrict out, \
                                      const T *restrict R,                  \
                                      const T *restrict t,                  \
                                      const int64_t *restrict index,        \
                                      int64_t lo, int64_t hi, int64_t B) {  \
    int64_t bad = -1;                                                       \
    for (int64_t i = lo; i < hi; ++i) {                                     \
      const int64_t g = index[i];                                           \
      if (g < 0 || g >= B) {                                                \
        if (bad < 0) bad = i;                                               \
        continue;                                                           \
      }                                                                     \
      LOAD_PARAMS(T, g)                                                     \
      RIGID_ROW(T)                                                          \
    }                                                                       \
    return bad;                                                             \
  }

DEFINE_SERIAL(float, f32)
DEFINE_SERIAL(double, f64)

typedef struct {
  int is_ptr, is_f64;
  const void *x, *R, *t;
  void *out;
  const int64_t *seg;
  int64_t count, B, N;
  int64_t bad[MAX_THREADS];
} task_t;

typedef void (*parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*int_fn)(void);
static parallel_fn gomp_parallel = NULL;
static int_fn thread_num = NULL, num_threads = NULL;

/* Installs (or, with NULLs, removes) the borrowed OpenMP entry points;
 * returns whether all three are set. */
int rigid_set_parallel(parallel_fn parallel, int_fn get_thread_num,
                       int_fn get_num_threads) {
  gomp_parallel = parallel;
  thread_num = get_thread_num;
  num_threads = get_num_threads;
  return gomp_parallel != NULL && thread_num != NULL && num_threads != NULL;
}

static void run_chunk(const task_t *k, int64_t lo, int64_t hi,
                      int64_t *bad) {
  if (k->is_f64)
    *bad = k->is_ptr ? ptr_chunk_f64(k->x, k->out, k->R, k->t, k->seg, lo,
                                     hi, k->N)
                     : index_chunk_f64(k->x, k->out, k->R, k->t, k->seg, lo,
                                       hi, k->B);
  else
    *bad = k->is_ptr ? ptr_chunk_f32(k->x, k->out, k->R, k->t, k->seg, lo,
                                     hi, k->N)
                     : index_chunk_f32(k->x, k->out, k->R, k->t, k->seg, lo,
                                       hi, k->B);
}

/* Body of the parallel region: thread id of T takes a contiguous share of
 * the graphs (ptr) or rows (index). */
static void worker(void *arg) {
  task_t *k = (task_t *)arg;
  int64_t id = thread_num(), T = num_threads();
  if (T > MAX_THREADS) T = MAX_THREADS;
  if (id < 0 || id >= T) return;
  run_chunk(k, k->count * id / T, k->count * (id + 1) / T, &k->bad[id]);
}

static int64_t dispatch(int is_ptr, int is_f64, const void *x, void *out,
                        const void *R, const void *t, const int64_t *seg,
                        int64_t count, int64_t B, int64_t N, int nthreads) {
  task_t k;
  k.is_ptr = is_ptr;
  k.is_f64 = is_f64;
  k.x = x;
  k.out = out;
  k.R = R;
  k.t = t;
  k.seg = seg;
  k.count = count;
  k.B = B;
  k.N = N;
  if (is_ptr && (seg[0] != 0 || seg[count] != N))
    return count; /* rows outside [ptr[0], ptr[B]) belong to no graph */
  for (int i = 0; i < MAX_THREADS; ++i) k.bad[i] = -1;
  if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
  if (nthreads > 1 && count >= nthreads && gomp_parallel != NULL)
    gomp_parallel(worker, &k, (unsigned)nthreads, 0);
  else
    run_chunk(&k, 0, count, &k.bad[0]);
  int64_t bad = -1;
  for (int i = 0; i < MAX_THREADS; ++i)
    if (k.bad[i] >= 0 && (bad < 0 || k.bad[i] < bad)) bad = k.bad[i];
  return bad;
}

int64_t rigid_ptr_f32(const float *x, float *out, const float *R,
                      const float *t, const int64_t *ptr, int64_t B,
                      int64_t N, int nthreads) {
  return dispatch(1, 0, x, out, R, t, ptr, B, B, N, nthreads);
}

int64_t rigid_ptr_f64(const double *x, double *out, const double *R,
                      const double *t, const int64_t *ptr, int64_t B,
                      int64_t N, int nthreads) {
  return dispatch(1, 1, x, out, R, t, ptr, B, B, N, nthreads);
}

int64_t rigid_index_f32(const float *x, float *out, const float *R,
                        const float *t, const int64_t *index, int64_t N,
                        int64_t B, int nthreads) {
  return dispatch(0, 0, x, out, R, t, index, N, B, N, nthreads);
}

int64_t rigid_index_f64(const double *x, double *out, const double *R,
                        const double *t, const int64_t *index, int64_t N,
                        int64_t B, int nthreads) {
  return dispatch(0, 1, x, out, R, t, index, N, B, N, nthreads);
}

/* Lets the loader check that it talks to the library it built. */
int rigid_kernel_abi_version(void) { return RIGID_ABI_VERSION; }

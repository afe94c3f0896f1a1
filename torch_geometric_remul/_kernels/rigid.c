/* Per-graph rigid transform kernels: out_i = R_g x_i (+ t_g), where g is the
 * graph of row i. x, out: [N, 3] row-major; R: [B, 3, 3] row-major; t: [B, 3]
 * or NULL. Graph membership is given either by CSR offsets (ptr, [B + 1],
 * rows sorted by graph) or by a per-row index ([N]).
 *
 * Plain C, no Python or torch headers: compiled on first use by
 * torch_geometric_remul._kernels and called through ctypes. */
#include <stdint.h>
#include <stddef.h>

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

/* Both kernels validate the graph assignment while they read it, so that
 * the caller needs no separate pass over ptr/index: they return -1 on
 * success, else the first offending position they saw (a graph g whose
 * range ptr[g]..ptr[g+1] is decreasing or outside [0, N], or a row i whose
 * index is outside [0, B)); rows of valid graphs are written either way. */
#define DEFINE_KERNELS(T, SUFFIX)                                           \
  int64_t rigid_ptr_##SUFFIX(const T *restrict x, T *restrict out,          \
                             const T *restrict R, const T *restrict t,      \
                             const int64_t *restrict ptr, int64_t B,        \
                             int64_t N, int nthreads) {                     \
    int64_t bad = -1;                                                       \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads) if(nthreads > 1)") \
    for (int64_t g = 0; g < B; ++g) {                                       \
      const int64_t start = ptr[g], end = ptr[g + 1];                       \
      if (start < 0 || end < start || end > N) {                            \
        _Pragma("omp atomic write")                                         \
        bad = g;                                                            \
        continue;                                                           \
      }                                                                     \
      LOAD_PARAMS(T, g)                                                     \
      for (int64_t i = start; i < end; ++i) RIGID_ROW(T)                    \
    }                                                                       \
    return bad;                                                             \
  }                                                                         \
  int64_t rigid_index_##SUFFIX(const T *restrict x, T *restrict out,        \
                               const T *restrict R, const T *restrict t,    \
                               const int64_t *restrict index, int64_t N,    \
                               int64_t B, int nthreads) {                   \
    int64_t bad = -1;                                                       \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads) if(nthreads > 1)") \
    for (int64_t i = 0; i < N; ++i) {                                       \
      const int64_t g = index[i];                                           \
      if (g < 0 || g >= B) {                                                \
        _Pragma("omp atomic write")                                         \
        bad = i;                                                            \
        continue;                                                           \
      }                                                                     \
      LOAD_PARAMS(T, g)                                                     \
      RIGID_ROW(T)                                                          \
    }                                                                       \
    return bad;                                                             \
  }

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* Lets the loader check that it talks to the library it built. */
int rigid_kernel_abi_version(void) { return 2; }

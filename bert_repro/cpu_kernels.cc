// Fused CPU kernels for MindSpore Custom "aot" ops (bert_repro/cpu_kernels.py): exact (erf) GELU,
// LayerNorm over the last axis, and per-row softmax cross-entropy, each forward and backward.
// float32 only. One pass per output instead of MindSpore's chain of elementwise kernels, each of
// which reads and writes the whole tensor (bench part e: GELU 23x, LayerNorm 18x slower than
// PyTorch before these). The LayerNorm and cross-entropy backward recompute their row statistics
// instead of keeping them: one more read of the row, no extra outputs.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <omp.h>

namespace {
int64_t Count(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}
constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace

extern "C" int GeluForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = Count(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kSqrtHalf));
  return 0;
}

extern "C" int GeluBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t n = Count(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + std::erf(v * kSqrtHalf));
    dx[i] = dy[i] * (cdf + v * kInvSqrt2Pi * std::exp(-0.5f * v * v));
  }
  return 0;
}

// A row's mean and 1 / sqrt(variance + eps), accumulated in double.
static std::pair<float, float> MeanRstd(const float *row, int64_t d, float eps) {
  double sum = 0, sq = 0;
  for (int64_t j = 0; j < d; j++) sum += row[j];
  const float mean = static_cast<float>(sum / d);
  for (int64_t j = 0; j < d; j++) sq += (row[j] - mean) * (row[j] - mean);
  return {mean, 1.0f / std::sqrt(static_cast<float>(sq / d) + eps)};
}

// params: x (rows, d), gamma (d), beta (d), eps (scalar tensor) -> y
extern "C" int LayerNormForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  const int64_t d = shapes[1][0];
  const int64_t rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    const auto [mean, rstd] = MeanRstd(xr, d, eps);
    for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
  return 0;
}

// params: x (rows, d), gamma (d), dy (rows, d), eps -> dx (rows, d), dgamma (d), dbeta (d)
extern "C" int LayerNormBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dgamma = static_cast<float *>(params[5]);
  float *dbeta = static_cast<float *>(params[6]);
  const int64_t d = shapes[1][0];
  const int64_t rows = Count(ndims[0], shapes[0]) / d;
  // Per-thread sums of dgamma/dbeta, added in thread order afterwards: the same result on every
  // run with the same thread count (a resumed run must match an uninterrupted one).
  const int threads = omp_get_max_threads();
  std::vector<float> partial(2 * threads * d, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float *dg = partial.data() + 2 * omp_get_thread_num() * d;
    float *db = dg + d;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * d, *dyr = dy + r * d;
      float *dxr = dx + r * d;
      const auto [mean, rstd] = MeanRstd(xr, d, eps);
      float mean_g = 0, mean_gx = 0;  // means over j of g = dy*gamma and g*xhat
      for (int64_t j = 0; j < d; j++) {
        const float xhat = (xr[j] - mean) * rstd, g = dyr[j] * gamma[j];
        mean_g += g;
        mean_gx += g * xhat;
        dg[j] += dyr[j] * xhat;
        db[j] += dyr[j];
      }
      mean_g /= d;
      mean_gx /= d;
      for (int64_t j = 0; j < d; j++) {
        const float xhat = (xr[j] - mean) * rstd;
        dxr[j] = rstd * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
      }
    }
  }
  for (int64_t j = 0; j < d; j++) dgamma[j] = dbeta[j] = 0.0f;
  for (int t = 0; t < threads; t++) {
    for (int64_t j = 0; j < d; j++) {
      dgamma[j] += partial[2 * t * d + j];
      dbeta[j] += partial[(2 * t + 1) * d + j];
    }
  }
  return 0;
}

namespace {
// One row's log-sum-exp, stable. `omp simd` lets the compiler call the vector expf of glibc's
// libmvec (needs -fno-math-errno): scalar expf made this kernel slower than MindSpore's.
float LogSumExp(const float *row, int64_t v) {
  float top = row[0];
#pragma omp simd reduction(max : top)
  for (int64_t j = 1; j < v; j++) top = row[j] > top ? row[j] : top;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < v; j++) sum += std::exp(row[j] - top);
  return top + std::log(sum);
}
int64_t Target(const void *targets, const char *dtype, int64_t r) {
  return std::strcmp(dtype, "int64") == 0 ? static_cast<const int64_t *>(targets)[r]
                                          : static_cast<const int32_t *>(targets)[r];
}
}  // namespace

// params: logits (rows, v), targets (rows) int32/int64 -> loss (rows). A negative target (torch's
// ignore_index -100) gives loss 0 and no gradient.
extern "C" int CrossEntropyForward(int, void **params, int *, int64_t **shapes, const char **dtypes, void *, void *) {
  const float *logits = static_cast<const float *>(params[0]);
  float *loss = static_cast<float *>(params[2]);
  const int64_t rows = shapes[0][0], v = shapes[0][1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t t = Target(params[1], dtypes[1], r);
    loss[r] = t < 0 ? 0.0f : LogSumExp(logits + r * v, v) - logits[r * v + t];
  }
  return 0;
}

// params: logits (rows, v), targets (rows), dloss (rows) -> dlogits = (softmax - onehot) * dloss
extern "C" int CrossEntropyBackward(int, void **params, int *, int64_t **shapes, const char **dtypes, void *, void *) {
  const float *logits = static_cast<const float *>(params[0]);
  const float *dloss = static_cast<const float *>(params[2]);
  float *dlogits = static_cast<float *>(params[3]);
  const int64_t rows = shapes[0][0], v = shapes[0][1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *row = logits + r * v;
    float *out = dlogits + r * v;
    const int64_t t = Target(params[1], dtypes[1], r);
    if (t < 0) {
      for (int64_t j = 0; j < v; j++) out[j] = 0.0f;
      continue;
    }
    const float lse = LogSumExp(row, v), g = dloss[r];
#pragma omp simd
    for (int64_t j = 0; j < v; j++) out[j] = std::exp(row[j] - lse) * g;
    out[t] -= g;
  }
  return 0;
}

// main.cc - edgeprune model on TensorFlow Lite Micro.
//
// Needs the files export.tflite writes (model_data.h / model_data.cc) and the generated
// tflm_config.h (which ops to register, which kind of export). Two kinds of export:
//   * EP_TFLM_STEP_BUNDLE 1: FastGRNN as one int8 step model (x_t, h) -> h' plus a head
//     model h -> logits (DESIGN.md workaround B); the time loop runs here.
//   * EP_TFLM_STEP_BUNDLE 0: one model window -> logits (CNNs, the while-loop FastGRNN).
// Input: one window of kSeqLen x kInputDim floats, NORMALISED ((x - mean) / std with the
// training statistics), time-major [t * channels + c]. Output: class and float logits.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "tflm_config.h"
#include EP_TFLM_MODEL_HEADER

namespace {

using Resolver = tflite::MicroMutableOpResolver<EP_TFLM_NUM_OPS>;

int8_t QuantizeInt8(float v, float scale, int zero_point) {
  long q = lroundf(v / scale) + zero_point;
  return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
}

float DequantizeInt8(int8_t q, float scale, int zero_point) {
  return scale * (float)(q - zero_point);
}

// Builds an interpreter over `arena`; returns nullptr (after a log line) on failure.
tflite::MicroInterpreter* MakeInterpreter(const unsigned char* data, const Resolver& resolver,
                                          uint8_t* arena, size_t arena_size, void* storage) {
  const tflite::Model* model = tflite::GetModel(data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema %d, TFLM expects %d", (int)model->version(), TFLITE_SCHEMA_VERSION);
    return nullptr;
  }
  auto* interp = new (storage) tflite::MicroInterpreter(model, resolver, arena, arena_size);
  if (interp->AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed: arena of %d bytes too small?", (int)arena_size);
    return nullptr;
  }
  return interp;
}

Resolver g_resolver;
alignas(16) uint8_t g_arena[kTensorArenaSize];
alignas(tflite::MicroInterpreter) uint8_t g_interp_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_interp = nullptr;

#if EP_TFLM_STEP_BUNDLE
alignas(16) uint8_t g_head_arena[kHeadTensorArenaSize];
alignas(tflite::MicroInterpreter) uint8_t g_head_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_head = nullptr;
int8_t g_h[kHiddenSize];  // the FastGRNN state, int8 in the step input's quantisation
constexpr int kWindowLen = kSeqLen * kInputDim;
#else
constexpr int kWindowLen = EP_TFLM_WINDOW_LEN;
constexpr int kNumClasses = EP_TFLM_NUM_CLASSES;
#endif

}  // namespace

// Sets up the op resolver and interpreter(s); false on failure.
bool EpTflmSetup() {
  EP_TFLM_ADD_OPS(g_resolver);
  g_interp = MakeInterpreter(model_data, g_resolver, g_arena, sizeof g_arena, g_interp_storage);
#if EP_TFLM_STEP_BUNDLE
  g_head = MakeInterpreter(model_data_head, g_resolver, g_head_arena, sizeof g_head_arena,
                           g_head_storage);
  return g_interp != nullptr && g_head != nullptr;
#else
  return g_interp != nullptr;
#endif
}

// Classifies one normalised window; writes kNumClasses logits; returns the class or -1.
int EpTflmPredict(const float* window, float* logits) {
#if EP_TFLM_STEP_BUNDLE
  TfLiteTensor* x = g_interp->input(kStepInputX);
  TfLiteTensor* h = g_interp->input(kStepInputH);
  for (int i = 0; i < kHiddenSize; ++i) g_h[i] = (int8_t)kHZeroPoint;  // h_0 = 0
  for (int t = 0; t < kSeqLen; ++t) {
    for (int c = 0; c < kInputDim; ++c) {
      x->data.int8[c] = QuantizeInt8(window[t * kInputDim + c], kXScale, kXZeroPoint);
    }
    memcpy(h->data.int8, g_h, sizeof g_h);
    if (g_interp->Invoke() != kTfLiteOk) return -1;
    const int8_t* h_next = g_interp->output(0)->data.int8;
    for (int i = 0; i < kHiddenSize; ++i) {  // h' -> h's quantisation (identity if equal)
      g_h[i] = QuantizeInt8(DequantizeInt8(h_next[i], kHNextScale, kHNextZeroPoint), kHScale,
                            kHZeroPoint);
    }
  }
  TfLiteTensor* head_in = g_head->input(0);
  for (int i = 0; i < kHiddenSize; ++i) {
    head_in->data.int8[i] = QuantizeInt8(DequantizeInt8(g_h[i], kHScale, kHZeroPoint),
                                         kHeadInScale, kHeadInZeroPoint);
  }
  if (g_head->Invoke() != kTfLiteOk) return -1;
  const TfLiteTensor* out = g_head->output(0);
#else
  TfLiteTensor* in = g_interp->input(0);
  for (int i = 0; i < kWindowLen; ++i) {
    if (in->type == kTfLiteInt8) {
      in->data.int8[i] = QuantizeInt8(window[i], in->params.scale, in->params.zero_point);
    } else {
      in->data.f[i] = window[i];
    }
  }
  if (g_interp->Invoke() != kTfLiteOk) return -1;
  const TfLiteTensor* out = g_interp->output(0);
#endif
  int best = 0;
  for (int k = 0; k < kNumClasses; ++k) {
    logits[k] = out->type == kTfLiteInt8
                    ? DequantizeInt8(out->data.int8[k], out->params.scale, out->params.zero_point)
                    : out->data.f[k];
    if (logits[k] > logits[best]) best = k;
  }
  return best;
}

int main() {
  tflite::InitializeTarget();
  if (!EpTflmSetup()) return 1;
  // Demo: the all-zero normalised window (= the training mean). Feed your sensor here.
  static float window[kWindowLen];
  float logits[kNumClasses];
  int cls = EpTflmPredict(window, logits);
  MicroPrintf("class %d", cls);
  return cls < 0 ? 1 : 0;
}

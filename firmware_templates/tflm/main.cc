// main.cc - edgeprune model on TensorFlow Lite Micro.
//
// Needs the files export.tflite writes (model_data.h / model_data.cc) and the generated
// tflm_config.h (which ops to register, which kind of export). Two kinds of export:
//   * EP_TFLM_STEP_BUNDLE 1: FastGRNN as one step model (x_t, h) -> h' plus a head model
//     h -> logits (DESIGN.md workaround B); the time loop runs here.
//   * EP_TFLM_STEP_BUNDLE 0: one model window -> logits (CNNs, the while-loop FastGRNN).
// Input and state follow the model's tensor types: int8 (int8 export), int16 (int16x8
// export) or float32. Input: one window of kSeqLen x kInputDim floats, NORMALISED
// ((x - mean) / std with the training statistics), time-major [t * channels + c].
// Output: class and float logits.
//
// Build defines (all optional):
//   EP_TFLM_LOG=<fn>   a C function `void fn(const char*)` that prints: TFLM's log
//                      (cortex_m_generic target) is routed to it, and a failed set-up
//                      names its cause (missing op, unsupported type, arena too small).
//                      Without it TFLM's generic Cortex-M target prints nothing.
//   EP_TFLM_ARENA_BYTES / EP_TFLM_HEAD_ARENA_BYTES   override kTensorArenaSize /
//                      kHeadTensorArenaSize (e.g. a large arena to measure the need).
//   EP_TFLM_NO_MAIN    leave main() out: call EpTflmSetup() / EpTflmPredict() yourself.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"
#ifdef EP_TFLM_LOG
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
extern "C" void EP_TFLM_LOG(const char* s);
#endif

#include "tflm_config.h"
#include EP_TFLM_MODEL_HEADER

#ifndef EP_TFLM_ARENA_BYTES
#define EP_TFLM_ARENA_BYTES kTensorArenaSize
#endif
static_assert(EP_TFLM_ARENA_BYTES > 0, "kTensorArenaSize (the TFLM arena) must be > 0");

// The API (also for your own main()).
bool EpTflmSetup();
int EpTflmPredict(const float* window, float* logits);
const TfLiteTensor* EpTflmOutput();
size_t EpTflmArenaUsed(int head);

namespace {

using Resolver = tflite::MicroMutableOpResolver<EP_TFLM_NUM_OPS>;

// A tensor's element type, quantisation and data (or another buffer in the same format).
struct View {
  TfLiteType type;
  float scale;
  int zero_point;
  void* data;
};

View ViewOf(const TfLiteTensor* t) {
  return View{t->type, t->params.scale, (int)t->params.zero_point, t->data.data};
}

int TypeBytes(TfLiteType type) {
  return type == kTfLiteInt8 ? 1 : (type == kTfLiteInt16 ? 2 : 4);
}

float Real(const View& v, int i) {
  switch (v.type) {
    case kTfLiteInt8:
      return v.scale * (float)(((const int8_t*)v.data)[i] - v.zero_point);
    case kTfLiteInt16:
      return v.scale * (float)(((const int16_t*)v.data)[i] - v.zero_point);
    default:
      return ((const float*)v.data)[i];
  }
}

// real -> the view's type: round half away from zero, as TFLite's QUANTIZE op.
void SetReal(const View& v, int i, float x) {
  if (v.type == kTfLiteFloat32) {
    ((float*)v.data)[i] = x;
    return;
  }
  long q = lroundf(x / v.scale) + v.zero_point;
  if (v.type == kTfLiteInt8) {
    ((int8_t*)v.data)[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
  } else {
    ((int16_t*)v.data)[i] = (int16_t)(q < -32768 ? -32768 : (q > 32767 ? 32767 : q));
  }
}

// Copies n values from src into dst's format (a plain copy when the formats agree).
void Move(const View& src, const View& dst, int n) {
  if (src.type == dst.type && src.scale == dst.scale && src.zero_point == dst.zero_point) {
    memcpy(dst.data, src.data, (size_t)n * (size_t)TypeBytes(src.type));
    return;
  }
  for (int i = 0; i < n; ++i) SetReal(dst, i, Real(src, i));
}

// ---- log: forward TFLM's messages, keep the first and last of a failed set-up ----
char g_first_log[96];
char g_last_log[96];

void ClearLog() { g_first_log[0] = g_last_log[0] = '\0'; }

#ifdef EP_TFLM_LOG
extern "C" void EpTflmLogCallback(const char* s) {
  if (s[0] != '\0' && s[0] != '\r' && s[0] != '\n') {
    char* keep = g_first_log[0] == '\0' ? g_first_log : g_last_log;
    strncpy(keep, s, sizeof g_first_log - 1);
    keep[sizeof g_first_log - 1] = '\0';
  }
  EP_TFLM_LOG(s);
}
#endif

// One line naming what failed and TFLM's own reason (e.g. "Didn't find op for builtin
// opcode 'TANH'", a kernel's type check, "Failed to allocate tail memory").
void Fail(const char* model, const char* what, int arena_bytes) {
  char first[sizeof g_first_log], last[sizeof g_last_log];
  memcpy(first, g_first_log, sizeof first);
  memcpy(last, g_last_log, sizeof last);
  MicroPrintf("EP TFLM ERROR %s model: %s (arena %d bytes)%s%s%s%s", model, what, arena_bytes,
              first[0] ? ": " : "", first, last[0] ? " / " : "", last);
}

bool CheckTensor(const char* model, const char* which, const TfLiteTensor* t, int elements) {
  if (t == nullptr) {
    MicroPrintf("EP TFLM ERROR %s model: no %s tensor", model, which);
    return false;
  }
  if (t->type != kTfLiteInt8 && t->type != kTfLiteInt16 && t->type != kTfLiteFloat32) {
    MicroPrintf("EP TFLM ERROR %s model: %s tensor has type %s; main.cc handles int8, int16, "
                "float32", model, which, TfLiteTypeGetName(t->type));
    return false;
  }
  if ((int)t->bytes != elements * TypeBytes(t->type)) {
    MicroPrintf("EP TFLM ERROR %s model: %s tensor holds %d bytes, expected %d values of %s",
                model, which, (int)t->bytes, elements, TfLiteTypeGetName(t->type));
    return false;
  }
  return true;
}

// Builds an interpreter over `arena`; nullptr (after one EP TFLM ERROR line) on failure.
tflite::MicroInterpreter* MakeInterpreter(const char* name, const unsigned char* data,
                                          const Resolver& resolver, uint8_t* arena,
                                          size_t arena_size, void* storage) {
  ClearLog();
  const tflite::Model* model = tflite::GetModel(data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("EP TFLM ERROR %s model: schema %d, TFLM expects %d", name,
                (int)model->version(), TFLITE_SCHEMA_VERSION);
    return nullptr;
  }
  auto* interp = new (storage) tflite::MicroInterpreter(model, resolver, arena, arena_size);
  if (interp->initialization_status() != kTfLiteOk) {
    Fail(name, "interpreter initialisation failed", (int)arena_size);
    return nullptr;
  }
  if (interp->AllocateTensors() != kTfLiteOk) {
    Fail(name, "AllocateTensors failed", (int)arena_size);
    return nullptr;
  }
  return interp;
}

Resolver g_resolver;
alignas(16) uint8_t g_arena[EP_TFLM_ARENA_BYTES];
alignas(tflite::MicroInterpreter) uint8_t g_interp_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_interp = nullptr;
const TfLiteTensor* g_output = nullptr;

#if EP_TFLM_STEP_BUNDLE
#ifndef EP_TFLM_HEAD_ARENA_BYTES
#define EP_TFLM_HEAD_ARENA_BYTES kHeadTensorArenaSize
#endif
static_assert(EP_TFLM_HEAD_ARENA_BYTES > 0, "kHeadTensorArenaSize must be > 0");
alignas(16) uint8_t g_head_arena[EP_TFLM_HEAD_ARENA_BYTES];
alignas(tflite::MicroInterpreter) uint8_t g_head_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_head = nullptr;
alignas(4) uint8_t g_h[kHiddenSize * 4];  // the state h, in the step input h's format
View g_state;
constexpr int kWindowLen = kSeqLen * kInputDim;
#else
constexpr int kWindowLen = EP_TFLM_WINDOW_LEN;
constexpr int kNumClasses = EP_TFLM_NUM_CLASSES;
#endif

}  // namespace

// Sets up the op resolver and interpreter(s); false (after an EP TFLM ERROR line) on failure.
bool EpTflmSetup() {
#ifdef EP_TFLM_LOG
  RegisterDebugLogCallback(EpTflmLogCallback);
#endif
  EP_TFLM_ADD_OPS(g_resolver);
  g_interp = MakeInterpreter(EP_TFLM_STEP_BUNDLE ? "step" : "window", model_data, g_resolver,
                             g_arena, sizeof g_arena, g_interp_storage);
  if (g_interp == nullptr) return false;
#if EP_TFLM_STEP_BUNDLE
  g_head = MakeInterpreter("head", model_data_head, g_resolver, g_head_arena,
                           sizeof g_head_arena, g_head_storage);
  if (g_head == nullptr) return false;
  const TfLiteTensor* h = g_interp->input(kStepInputH);
  if (!CheckTensor("step", "x", g_interp->input(kStepInputX), kInputDim) ||
      !CheckTensor("step", "h", h, kHiddenSize) ||
      !CheckTensor("step", "output", g_interp->output(0), kHiddenSize) ||
      !CheckTensor("head", "input", g_head->input(0), kHiddenSize) ||
      !CheckTensor("head", "output", g_head->output(0), kNumClasses)) {
    return false;
  }
  g_state = View{h->type, h->params.scale, (int)h->params.zero_point, g_h};
  g_output = g_head->output(0);
#else
  if (!CheckTensor("window", "input", g_interp->input(0), kWindowLen) ||
      !CheckTensor("window", "output", g_interp->output(0), kNumClasses)) {
    return false;
  }
  g_output = g_interp->output(0);
#endif
  return true;
}

// Classifies one normalised window; writes kNumClasses logits; returns the class or -1.
int EpTflmPredict(const float* window, float* logits) {
#if EP_TFLM_STEP_BUNDLE
  const View x = ViewOf(g_interp->input(kStepInputX));
  const View h = ViewOf(g_interp->input(kStepInputH));
  const View h_next = ViewOf(g_interp->output(0));
  for (int i = 0; i < kHiddenSize; ++i) SetReal(g_state, i, 0.0f);  // h_0 = 0
  for (int t = 0; t < kSeqLen; ++t) {
    for (int c = 0; c < kInputDim; ++c) SetReal(x, c, window[t * kInputDim + c]);
    Move(g_state, h, kHiddenSize);
    if (g_interp->Invoke() != kTfLiteOk) return -1;
    Move(h_next, g_state, kHiddenSize);
  }
  Move(g_state, ViewOf(g_head->input(0)), kHiddenSize);
  if (g_head->Invoke() != kTfLiteOk) return -1;
#else
  const View in = ViewOf(g_interp->input(0));
  for (int i = 0; i < kWindowLen; ++i) SetReal(in, i, window[i]);
  if (g_interp->Invoke() != kTfLiteOk) return -1;
#endif
  const View out = ViewOf(g_output);
  int best = 0;
  for (int k = 0; k < kNumClasses; ++k) {
    logits[k] = Real(out, k);
    if (logits[k] > logits[best]) best = k;
  }
  return best;
}

// The logits tensor of the last EpTflmPredict (quantised as the model's output).
const TfLiteTensor* EpTflmOutput() { return g_output; }

// Arena bytes the step (or single) model (head = 0) or the head model (head = 1) uses.
size_t EpTflmArenaUsed(int head) {
#if EP_TFLM_STEP_BUNDLE
  if (head) return g_head != nullptr ? g_head->arena_used_bytes() : 0;
#endif
  return head == 0 && g_interp != nullptr ? g_interp->arena_used_bytes() : 0;
}

#ifndef EP_TFLM_NO_MAIN
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
#endif

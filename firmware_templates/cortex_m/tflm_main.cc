// tflm_main.cc - runs a TFLM firmware folder (firmware_templates/tflm/main.cc, built with
// EP_TFLM_NO_MAIN and EP_TFLM_LOG=ep_puts) on this board over the windows of windows.h and
// prints the lines main.c prints for the C model (the host parses both alike):
//
//   EP BEGIN model=tflm windows=<N> input_len=<L> classes=<C> scratch=<arena bytes> stack_size=<b>
//   EP ARENA used=<step or window model> head_used=<head model> size=<a> head_size=<b>
//   EP W <i> class=<c> expected=<e> ticks=<t> stack=<bytes> scores=<q0>,<q1>,...
//   EP END windows=<N> mismatches=<m> stack_max=<bytes>
//
// scores: the output tensor's quantised values (int8/int16; a float32 output as its bits).
// A failed set-up prints main.cc's "EP TFLM ERROR ..." line and exits 1.
//
// Built with -DEP_TFLM_MEASURE_ARENA=<bytes> it only probes an arena: the command line
// "firmware <model> <size>" (model 0: step or window model, 1: head) runs that model once
// on all-zero input bytes in an arena of <size> bytes (at most <bytes>) and prints
// "EP PROBE ok=<0|1> used=<arena_used_bytes> out=<FNV-1a of the output bytes>". The host
// bisects over runs: TFLM's arena_used_bytes() is less than allocation needs (memory
// planning takes temporary space beyond it), and some too-small arenas fault inside TFLM,
// so each probe is its own run.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "ep_config.h"
#include "tensorflow/lite/c/common.h"
#include "windows.h"
#ifdef EP_TFLM_MEASURE_ARENA
#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_config.h"
#include EP_TFLM_MODEL_HEADER
#endif

bool EpTflmSetup();
int EpTflmPredict(const float* window, float* logits);
const TfLiteTensor* EpTflmOutput();
size_t EpTflmArenaUsed(int head);

extern "C" {
__attribute__((noinline, used)) void ep_mark_begin(void) { __asm__ volatile(""); }
__attribute__((noinline, used)) void ep_mark_end(void) { __asm__ volatile(""); }
}

namespace {

int32_t Score(const TfLiteTensor* t, int k) {
  if (t->type == kTfLiteInt8) return t->data.int8[k];
  if (t->type == kTfLiteInt16) return t->data.i16[k];
  int32_t bits;
  memcpy(&bits, &t->data.f[k], sizeof bits);
  return bits;
}

void PrintField(char* line, unsigned cap, unsigned* pos, const char* name, uint32_t v) {
  ep_fmt_str(line, cap, pos, name);
  ep_fmt_uint(line, cap, pos, v);
}

#ifdef EP_TFLM_MEASURE_ARENA
alignas(16) uint8_t g_probe_arena[EP_TFLM_MEASURE_ARENA];
alignas(tflite::MicroInterpreter) uint8_t g_probe_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroMutableOpResolver<EP_TFLM_NUM_OPS> g_probe_ops;

uint32_t ParseUint(const char** s) {
  uint32_t v = 0;
  while (**s == ' ') ++*s;
  while (**s >= '0' && **s <= '9') v = v * 10u + (uint32_t)(*(*s)++ - '0');
  return v;
}

int Probe() {
  char cmd[64];
  if (ep_cmdline(cmd, sizeof cmd) != 0) return 2;
  const char* p = cmd;
  while (*p != '\0' && *p != ' ') ++p;  // the program name
  uint32_t model = ParseUint(&p), size = ParseUint(&p);
  if (size == 0 || size > sizeof g_probe_arena) return 2;
#if EP_TFLM_STEP_BUNDLE
  const unsigned char* data = model == 1 ? model_data_head : model_data;
#else
  const unsigned char* data = model_data;
#endif
  EP_TFLM_ADD_OPS(g_probe_ops);
  memset(g_probe_arena, 0xA5, sizeof g_probe_arena);  // stray reads see garbage
  auto* it = new (g_probe_storage)
      tflite::MicroInterpreter(tflite::GetModel(data), g_probe_ops, g_probe_arena, size);
  bool ok = it->initialization_status() == kTfLiteOk && it->AllocateTensors() == kTfLiteOk;
  for (size_t i = 0; ok && i < it->inputs_size(); ++i) {
    memset(it->input(i)->data.raw, 0, it->input(i)->bytes);
  }
  ok = ok && it->Invoke() == kTfLiteOk;
  uint32_t hash = 2166136261u;
  for (size_t i = 0; ok && i < it->output(0)->bytes; ++i) {
    hash = (hash ^ (uint8_t)it->output(0)->data.raw[i]) * 16777619u;
  }
  char line[96];
  unsigned pos = 0;
  PrintField(line, sizeof line, &pos, "EP PROBE ok=", ok ? 1u : 0u);
  PrintField(line, sizeof line, &pos, " used=", ok ? (uint32_t)it->arena_used_bytes() : 0u);
  PrintField(line, sizeof line, &pos, " out=", hash);
  ep_fmt_str(line, sizeof line, &pos, "\n");
  ep_puts(line);
  return 0;
}
#endif

}  // namespace

int main() {
#ifdef EP_TFLM_MEASURE_ARENA
  return Probe();
#endif
  char line[192];
  unsigned pos = 0;
  ep_fmt_str(line, sizeof line, &pos, "EP BEGIN model=tflm");
  PrintField(line, sizeof line, &pos, " windows=", EP_NUM_WINDOWS);
  PrintField(line, sizeof line, &pos, " input_len=", EP_INPUT_LEN);
  PrintField(line, sizeof line, &pos, " classes=", EP_NUM_CLASSES);
  PrintField(line, sizeof line, &pos, " scratch=", EP_SCRATCH_BYTES);
  PrintField(line, sizeof line, &pos, " stack_size=", ep_stack_size());
  ep_fmt_str(line, sizeof line, &pos, "\n");
  ep_puts(line);
  if (!EpTflmSetup()) return 1;
  pos = 0;
  PrintField(line, sizeof line, &pos, "EP ARENA used=", EpTflmArenaUsed(0));
  PrintField(line, sizeof line, &pos, " head_used=", EpTflmArenaUsed(1));
  ep_fmt_str(line, sizeof line, &pos, "\n");
  ep_puts(line);

  uint32_t lowest = ep_stack_lowest();
  unsigned mismatches = 0;
  float logits[EP_NUM_CLASSES];
  for (unsigned i = 0; i < EP_NUM_WINDOWS; ++i) {
    uint32_t low = ep_stack_lowest();
    if (low < lowest) lowest = low;
    ep_stack_repaint();
    uint32_t sp_before = ep_get_sp();

    ep_ticks_start();
    ep_mark_begin();
    int cls = EpTflmPredict(ep_windows[i], logits);
    ep_mark_end();
    uint32_t ticks = ep_ticks_elapsed();
    if (cls < 0) {
      ep_puts("EP TFLM ERROR Invoke failed\n");
      return 1;
    }

    low = ep_stack_lowest();
    if (low < lowest) lowest = low;
    if (ep_expected[i] >= 0 && cls != ep_expected[i]) ++mismatches;

    pos = 0;
    PrintField(line, sizeof line, &pos, "EP W ", i);
    ep_fmt_str(line, sizeof line, &pos, " class=");
    ep_fmt_int(line, sizeof line, &pos, cls);
    ep_fmt_str(line, sizeof line, &pos, " expected=");
    ep_fmt_int(line, sizeof line, &pos, ep_expected[i]);
    PrintField(line, sizeof line, &pos, " ticks=", ticks);
    PrintField(line, sizeof line, &pos, " stack=", sp_before - low);
    ep_fmt_str(line, sizeof line, &pos, " scores=");
    for (int k = 0; k < EP_NUM_CLASSES; ++k) {
      if (k > 0) ep_fmt_str(line, sizeof line, &pos, ",");
      ep_fmt_int(line, sizeof line, &pos, Score(EpTflmOutput(), k));
    }
    ep_fmt_str(line, sizeof line, &pos, "\n");
    ep_puts(line);
  }
  uint32_t low = ep_stack_lowest();
  if (low < lowest) lowest = low;
  pos = 0;
  PrintField(line, sizeof line, &pos, "EP END windows=", EP_NUM_WINDOWS);
  PrintField(line, sizeof line, &pos, " mismatches=", mismatches);
  PrintField(line, sizeof line, &pos, " stack_max=", ep_stack_top() - lowest);
  ep_fmt_str(line, sizeof line, &pos, "\n");
  ep_puts(line);
  return EP_EXIT_OK;
}

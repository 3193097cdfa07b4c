// edgeprune_har.ino - runs the edgeprune C model on windows received over Serial.
//
// Wire format (host -> board), one frame per window:
//   2 sync bytes 'E' 'P', then EP_INPUT_LEN values of the model's integer input type
//   (ep_input_t: int16 little-endian = 2 bytes each, or int8 = 1 byte each), time-major:
//   value [t * channels + c] for t = 0..127, c = 0..8 (the order of the Python reference).
// Reply (board -> host), one text line per window:
//   class=<c> scores=<s0>,<s1>,... us=<microseconds in predict()>
// Bytes that do not start a frame are skipped, so a host can resynchronise any time.
// The model files (<name>_model.h/.c, ep_kernels.h/.c) and the generated ep_config.h
// sit beside this sketch; Arduino compiles the .c files as C.
#include <Arduino.h>

extern "C" {
#include "ep_config.h"
}

static const uint32_t kBaud = 115200;
static const size_t kFrameBytes = (size_t)EP_INPUT_LEN * sizeof(ep_input_t);

static ep_input_t window_buf[EP_INPUT_LEN];
static uint32_t scratch[(EP_SCRATCH_BYTES + 3) / 4 > 0 ? (EP_SCRATCH_BYTES + 3) / 4 : 1];
static int32_t scores[EP_NUM_CLASSES];

// Receiver state: sync = 0 waiting for 'E', 1 waiting for 'P', 2 reading the frame.
static uint8_t sync_state = 0;
static size_t received = 0;

// Store byte i of the frame (little-endian, independent of the board's byte order).
static void store_byte(size_t i, uint8_t b)
{
    size_t k = i / sizeof(ep_input_t);
    size_t shift = 8u * (i % sizeof(ep_input_t));
    uint16_t u = (shift == 0) ? 0u : (uint16_t)window_buf[k];
    u = (uint16_t)(u | ((uint16_t)b << shift));
    window_buf[k] = (ep_input_t)u;
}

static void run_window(void)
{
    unsigned long t0 = micros();
    int cls = EP_PREDICT(window_buf, scratch, scores);
    unsigned long us = micros() - t0;
    Serial.print("class=");
    Serial.print((long)cls);
    Serial.print(" scores=");
    for (int k = 0; k < EP_NUM_CLASSES; ++k) {
        if (k > 0) {
            Serial.print(",");
        }
        Serial.print((long)scores[k]);
    }
    Serial.print(" us=");
    Serial.println(us);
}

void setup()
{
    Serial.begin(kBaud);
    Serial.print("edgeprune " EP_MODEL_NAME " ready: send 'EP' + ");
    Serial.print((unsigned long)kFrameBytes);
    Serial.println(" bytes per window");
}

void loop()
{
    while (Serial.available() > 0) {
        uint8_t b = (uint8_t)Serial.read();
        if (sync_state == 0) {
            sync_state = (b == 'E') ? 1 : 0;
        } else if (sync_state == 1) {
            sync_state = (b == 'P') ? 2 : (b == 'E' ? 1 : 0);
            received = 0;
        } else {
            store_byte(received++, b);
            if (received == kFrameBytes) {
                run_window();
                sync_state = 0;
            }
        }
    }
}

"""The Arduino sketch, compiled with the host g++ against a minimal Serial stand-in.

arduino-cli is not available here; this checks the sketch's C++ (frame parsing, the
model call, the reply format) with the stand-in model of test_firmware.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_firmware import synthetic_windows, toy_reference, write_toy_model

from edgeprune import firmware

pytestmark = pytest.mark.skipif(
    not (shutil.which("g++") and shutil.which("gcc")), reason="host g++/gcc missing"
)

# A minimal Arduino core stand-in: Serial reads stdin, prints to stdout.
ARDUINO_H = r"""
#ifndef ARDUINO_H
#define ARDUINO_H
#include <cstdint>
#include <cstdio>
#include <cstring>
class StandInSerial {
 public:
  void begin(unsigned long) {}
  int available() { fill(); return len_ - pos_; }
  int read() { fill(); return pos_ < len_ ? buf_[pos_++] : -1; }
  void print(const char *s) { std::fputs(s, stdout); }
  void print(long v) { std::printf("%ld", v); }
  void print(unsigned long v) { std::printf("%lu", v); }
  void print(int v) { std::printf("%d", v); }
  void println(const char *s) { print(s); std::fputs("\n", stdout); }
  void println(unsigned long v) { print(v); std::fputs("\n", stdout); }
  void println(long v) { print(v); std::fputs("\n", stdout); }
 private:
  void fill() {
    if (pos_ < len_) return;
    len_ = (int)std::fread(buf_, 1, sizeof buf_, stdin);
    pos_ = 0;
    if (len_ <= 0) { len_ = 0; done = true; }
  }
  unsigned char buf_[257];
  int len_ = 0, pos_ = 0;
 public:
  bool done = false;
};
extern StandInSerial Serial;
inline unsigned long micros() { return 0; }
void setup();
void loop();
#endif
"""

MAIN_CPP = r"""
#include "Arduino.h"
StandInSerial Serial;
int main() {
  setup();
  while (!Serial.done) loop();
  return 0;
}
"""


def test_sketch_on_host(tmp_path: Path) -> None:
    model = write_toy_model(tmp_path / "c_model")
    sketch = firmware.generate_arduino(model, tmp_path / "arduino")
    assert (sketch / "edgeprune_har.ino").is_file() and (sketch / "ep_config.h").is_file()
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "Arduino.h").write_text(ARDUINO_H)
    (tmp_path / "stub" / "main.cpp").write_text(MAIN_CPP)
    objs = []
    for c in sorted(sketch.glob("*.c")):
        obj = tmp_path / (c.stem + ".o")
        subprocess.run(
            ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", str(c), "-o", str(obj)],
            check=True,
            timeout=60,
        )
        objs.append(str(obj))
    exe = tmp_path / "sketch"
    proc = subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(tmp_path / "stub"),
            "-I",
            str(sketch),
            "-x",
            "c++",
            str(sketch / "edgeprune_har.ino"),
            "-x",
            "none",
            str(tmp_path / "stub" / "main.cpp"),
            *objs,
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    windows = synthetic_windows(5, seed=7)
    classes, scores = toy_reference(windows)
    # garbage before the first frame and between frames must be skipped
    stream = b"xyzE" + b"".join(b"\x00Q" + firmware.encode_frame(w) for w in windows)
    out = subprocess.run([str(exe)], input=stream, capture_output=True, timeout=30).stdout
    lines = out.decode().splitlines()
    assert lines[0].startswith("edgeprune toy ready: send 'EP' + 2304 bytes")
    replies = [firmware.parse_reply(x) for x in lines[1:]]
    assert [c for c, _ in replies] == classes.tolist()
    assert [s for _, s in replies] == scores.tolist()


@pytest.mark.bad_input
def test_sketch_needs_a_c_model(tmp_path: Path) -> None:
    with pytest.raises(firmware.MissingCModel):
        firmware.generate_arduino(tmp_path, tmp_path / "out")


def test_encode_frame_is_little_endian() -> None:
    frame = firmware.encode_frame(np.array([1, -2], dtype=np.int16))
    assert frame == b"EP\x01\x00\xfe\xff"

"""Stage records round-trip through JSON exactly (what the run folder stores)."""

from __future__ import annotations

import json

import pytest

from edgeprune.pipeline.records import (
    Arch,
    BoardRun,
    Candidate,
    CandidateSpeed,
    DenseResult,
    ExportResult,
    RefitResult,
    SizeProbes,
    SpeedProbe,
    SpeedProbes,
    StageInfo,
)

CNN_PROBE = Candidate(arch="cnn-8-16", hidden=None, w_rank=None, u_rank=None, filters=(8, 16),
                      sparsity=0.5, finetuned=False, fits=True, model_bytes=900,
                      code_bytes=4000, ram_bytes=300, toolchain="arm-cortex-m4",
                      val_accuracy=0.93)
TUNED = Candidate(arch="h80-w5-u40", hidden=80, w_rank=5, u_rank=40, filters=None,
                  sparsity=0.74, finetuned=True, fits=True, model_bytes=3070, code_bytes=11000,
                  ram_bytes=800, toolchain="host-gcc", val_accuracy=0.9555,
                  weights="pruned-h80-w5-u40-s0.730", finetune_epoch=9,
                  finetuned_sparsity=0.73, instructions_per_window=2_440_000, selected=True)
RECORDS = [
    Arch(filters=(16, 32, 64)), Arch(80, 5, 40), CNN_PROBE, TUNED,
    DenseResult("h80-w5-u40", 0.9575, 31, 40, 7169, None),
    DenseResult("h48-w5-u16", 0.95, 12, 40, 3000, "loss rose 2.1x after epoch 30"),
    SizeProbes((CNN_PROBE, TUNED)), SpeedProbes((SpeedProbe("h48-w5-u16", 0.5, 830_000),)),
    CandidateSpeed("pruned-h48-w5-u16-s0.500", 830_000),
    RefitResult("refit-x", 7352, 31, 9, 0.73, 0.74, 3070, True, None),
    ExportResult({"val": 0.95, "test_c_int8": 0.94}, {"model": 3070, "toolchain": "host-gcc"},
                 "int16x8", [{"name": "w1", "weights": 100}], [[1, 2], [3, 4]], ["tflm/a.h"]),
    BoardRun({"board": "mps2-an386", "agreement": 1.0}), StageInfo(12.5, "local"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_record_round_trips_through_json(record):
    text = json.dumps(record.to_json())
    assert type(record).from_json(json.loads(text)) == record


def test_a_candidate_knows_its_architecture():
    assert TUNED.spec == Arch(80, 5, 40) and TUNED.spec.label == TUNED.arch
    assert CNN_PROBE.spec == Arch(filters=(8, 16)) and CNN_PROBE.spec.label == CNN_PROBE.arch

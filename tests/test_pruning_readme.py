"""The user guide's snippets (edgeprune/pruning/README.md) run, in order, and do what it says."""

import re
from pathlib import Path

import pytest

import edgeprune  # noqa: F401  (selects tf_keras)
from edgeprune.pruning import collect_prunable
from edgeprune.pruning.ranking import num_pruned

README = Path(__file__).resolve().parents[1] / "edgeprune" / "pruning" / "README.md"


def _zeros(model):
    ps = collect_prunable(model)
    return sum(int((p.variable.numpy() == 0).sum()) for p in ps), sum(p.size for p in ps)


def test_readme_snippets_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md block {i}", "exec"), ns)  # noqa: S102
        if i == 1:  # gradual: the target is reached, the logs carry it
            zeros, n = _zeros(ns["model"])
            assert zeros == num_pruned(0.9, n)
            assert ns["history"].history["sparsity"][-1] == pytest.approx(zeros / n)
        if i == 2:  # one-shot: the zeros held through the fine-tune
            zeros, n = _zeros(ns["model"])
            assert zeros == num_pruned(0.8, n)
        if i == 3:  # resumed from half.keras: the schedule went on to its end
            zeros, n = _zeros(ns["model"])
            assert zeros == num_pruned(0.9, n)
    assert ns["tflite_bytes"][4:8] == b"TFL3"
    out = capsys.readouterr().out
    assert "'PruningShortfallWarning'" in out and "'UserWarning'" in out
    zeros, n = _zeros(ns["model"])
    assert zeros == num_pruned(0.9, n)  # re-pruned by the callback

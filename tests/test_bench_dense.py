"""``python -m edgeprune.bench dense`` on a small archive built from the UCI mirror."""

import json
import subprocess
import sys

import pytest
from conftest import MAKE_UCI_ARCHIVE

import edgeprune  # noqa: F401
from edgeprune import training
from edgeprune.bench.__main__ import main


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory, uci_mirror):
    out = tmp_path_factory.mktemp("uci")
    subprocess.run([sys.executable, str(MAKE_UCI_ARCHIVE), str(out), "--subjects", "1", "3",
                    "5", "2"], check=True, capture_output=True)
    return out


@pytest.mark.needs_uci
@pytest.mark.parametrize("model", ["cnn", "fastgrnn"])
def test_bench_dense_writes_json(small_archive, tmp_path, model):
    out = tmp_path / "dense.json"
    rc = main(["dense", "--model", model, "--data", "uci", "--data-path", str(small_archive),
               "--json", str(out), "--epochs", "1", "--val-subjects", "1",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    for key in ("val_accuracy", "test_accuracy", "params", "epochs", "selected_epoch",
                "seconds_per_epoch", "seconds_total", "dataset"):
        assert key in res, key
    assert res["dataset"] == "uci-har2" and res["epochs"] == 1 and res["selected_epoch"] == 1
    assert res["training_warning"] is None  # one epoch cannot rise
    assert 0.0 <= res["val_accuracy"] <= 1.0 and 0.0 <= res["test_accuracy"] <= 1.0
    assert res["params"] == (7169 if model == "fastgrnn" else res["params"])


@pytest.mark.needs_uci
def test_bench_dense_fastgrnn_size_flags(small_archive, tmp_path):
    out = tmp_path / "dense.json"
    rc = main(["dense", "--model", "fastgrnn", "--data", "uci", "--data-path",
               str(small_archive), "--json", str(out), "--epochs", "1", "--val-subjects", "1",
               "--hidden", "16", "--w-rank", "4", "--u-rank", "8",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["arch"] == {"hidden": 16, "w_rank": 4, "u_rank": 8}
    # W1 9x4, W2 4x16, U1 16x8, U2 8x16, two biases, zeta and nu, Dense 16x2 + 2
    assert res["params"] == 36 + 64 + 128 + 128 + 2 * 16 + 2 + 34


@pytest.mark.bad_input
@pytest.mark.parametrize("model, extra, message", [
    ("cnn", ["--hidden", "32"], "fastgrnn only"),
    ("fastgrnn", ["--u-rank", "0"], "--u-rank=0"),
    ("fastgrnn", ["--hidden", "-8", "--w-rank", "0"], "--hidden=-8, --w-rank=0")])
def test_bench_dense_bad_size_flags(tmp_path, capsys, model, extra, message):
    assert main(["dense", "--model", model, "--json", str(tmp_path / "x.json"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.needs_uci
def test_bench_dense_refit_trains_on_train_and_validation(small_archive, tmp_path):
    out = tmp_path / "dense.json"
    rc = main(["dense", "--model", "cnn", "--data", "uci", "--data-path", str(small_archive),
               "--json", str(out), "--epochs", "2", "--val-subjects", "1", "--refit",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    refit = res["refit"]
    assert refit["n_train"] == res["n_train"] + res["n_val"]
    assert refit["epochs"] == res["selected_epoch"]
    assert 0.0 <= refit["test_accuracy"] <= 1.0 and refit["seconds_total"] > 0
    rc = main(["dense", "--model", "cnn", "--data", "uci", "--data-path", str(small_archive),
               "--json", str(out), "--epochs", "2", "--val-subjects", "1", "--refit",
               "--refit-epochs", "2", "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 0 and json.loads(out.read_text())["refit"]["epochs"] == 2
    assert main(["dense", "--model", "cnn", "--data", "uci", "--data-path", str(small_archive),
                 "--json", str(tmp_path / "y.json"), "--epochs", "2", "--val-subjects", "1",
                 "--refit", "--refit-epochs", "3", "--cache-dir", str(tmp_path / "cache")]) == 2
    assert not (tmp_path / "y.json").exists()


@pytest.mark.needs_uci
def test_bench_dense_folds_cross_validates_over_training_volunteers(small_archive, tmp_path):
    out = tmp_path / "cv.json"
    rc = main(["dense", "--model", "cnn", "--data", "uci", "--data-path", str(small_archive),
               "--json", str(out), "--epochs", "2", "--folds", "3",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert "test_accuracy" not in res
    held_out = [f["val_subjects"] for f in res["folds"]]
    assert held_out == [[1], [3], [5]]  # every training volunteer held out exactly once
    accs = [f["val_accuracy"] for f in res["folds"]]
    assert all(0.0 <= a <= 1.0 for a in accs)
    assert res["val_accuracy_mean"] == pytest.approx(sum(accs) / 3)
    curves = [f["val_accuracy_curve"] for f in res["folds"]]
    assert len(res["val_accuracy_curve_mean"]) == 2
    for f in res["folds"]:
        assert len(f["loss_curve"]) == 2
        assert f["training_warning"] == training.loss_rise({"loss": f["loss_curve"]})
    best = max(range(2), key=lambda e: (sum(c[e] for c in curves), -e))
    assert res["cv_epoch"] == best + 1
    assert all(f["n_train"] + f["n_val"] == res["folds"][0]["n_train"] + res["folds"][0]["n_val"]
               for f in res["folds"])
    # the folds ran as parallel Ray tasks; one after another in one process (a fresh
    # one: this test session's TensorFlow has other threads) they give the same curves
    alone = tmp_path / "cv1.json"
    subprocess.run([sys.executable, "-m", "edgeprune.bench", "dense", "--model", "cnn",
                    "--data", "uci", "--data-path", str(small_archive), "--json", str(alone),
                    "--epochs", "2", "--folds", "3", "--workers", "1", "--cache-dir",
                    str(tmp_path / "cache"), "--no-progress"], check=True, timeout=600,
                   capture_output=True)
    assert [f["val_accuracy_curve"] for f in json.loads(alone.read_text())["folds"]] == curves


@pytest.mark.bad_input
@pytest.mark.parametrize("extra", [["--folds", "1"], ["--folds", "3", "--refit"],
                                   ["--folds", "3", "--val-subjects", "1"],
                                   ["--refit-epochs", "5"], ["--refit", "--refit-epochs", "0"]])
def test_bench_dense_bad_folds(tmp_path, extra, capsys):
    assert main(["dense", "--model", "cnn", "--json", str(tmp_path / "x.json"), *extra]) == 2
    assert extra[0] in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.needs_uci
def test_bench_dense_more_folds_than_volunteers(small_archive, tmp_path, capsys):
    assert main(["dense", "--model", "cnn", "--data", "uci", "--data-path", str(small_archive),
                 "--json", str(tmp_path / "x.json"), "--folds", "4",
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 2
    assert "only 3 training volunteers" in capsys.readouterr().err


@pytest.mark.bad_input
def test_bench_dense_bad_epochs(tmp_path):
    with pytest.raises(SystemExit):
        main(["dense", "--model", "lstm", "--json", str(tmp_path / "x.json")])
    assert main(["dense", "--model", "cnn", "--json", str(tmp_path / "x.json"),
                 "--epochs", "0"]) == 2


@pytest.mark.needs_uci
def test_bench_dense_seeds_reports_members_best_and_ensemble(small_archive, tmp_path):
    """``--seeds 2``: two members with the pipeline's member seeds, each evaluated, the
    member best on validation named, and the mean-logit ensemble evaluated."""
    out = tmp_path / "seeds.json"
    rc = main(["dense", "--model", "fastgrnn", "--data", "uci", "--data-path",
               str(small_archive), "--json", str(out), "--epochs", "2", "--val-subjects", "1",
               "--hidden", "8", "--w-rank", "2", "--u-rank", "4", "--seed", "3",
               "--seeds", "2", "--workers", "1", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    res = json.loads(out.read_text())
    members = res["members"]
    assert [m["seed"] for m in members] == list(training.member_seeds(3, 2))
    assert members[0]["seed"] == 3 != members[1]["seed"]
    val = [m["val_accuracy"] for m in members]
    best = members[val.index(max(val))]
    assert res["best_on_val"] == {k: best[k] for k in ("seed", "val_accuracy",
                                                       "test_accuracy")}
    for key in ("val_accuracy", "test_accuracy"):
        assert res["member_mean"][key] == pytest.approx(sum(m[key] for m in members) / 2)
        assert 0.0 <= res["ensemble"][key] <= 1.0


@pytest.mark.bad_input
def test_bench_dense_seeds_excludes_refit(tmp_path, capsys):
    assert main(["dense", "--model", "fastgrnn", "--json", str(tmp_path / "x.json"),
                 "--seeds", "2", "--refit"]) == 2
    assert "--seeds K excludes --refit" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()

"""Where one FastGRNN training epoch's seconds go, part by part (issue 21).

    PYTHONPATH=. nice -n 10 .venv/bin/python scripts/epoch_breakdown.py \
        --data uci --data-path "UCI HAR Dataset.zip" [--epochs 3]

On seed 0's split, with the recipe ``training.train`` runs (FASTGRNN_DEFAULTS: batch 128,
Adam with global clipnorm, rotate + jitter augmentation, one ``fit`` per epoch, then the
validation pass), TensorFlow on one intra-op thread as the pipeline pins it. After one
untimed warm-up epoch, times over ``--epochs`` epochs: the shuffle + augmentation, the
``fit`` (forward/backward), the validation ``evaluate``; then the ``fit`` alone at
EdgeML's batch 100 and, with ``--unrolled``, with the RNN unrolled (``RNN(unroll=True)``:
a 128-step graph, as EdgeML's ``static_rnn`` builds). Prints one JSON object: median wall
and CPU seconds per part (CPU: this process's, all threads; steadier on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

import edgeprune  # noqa: F401  (Keras 2 before TensorFlow loads)


def _median_seconds(fn: Callable[[int], object], epochs: int) -> dict[str, float]:
    """Median wall and CPU (this process, all threads) seconds of ``fn`` after a warm-up."""
    fn(-1)  # warm-up (tracing, first allocations)
    wall, cpu = [], []
    for epoch in range(epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(epoch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": round(statistics.median(wall), 3), "cpu": round(statistics.median(cpu), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="uci")
    p.add_argument("--data-path", default=None)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--unrolled", action="store_true",
                   help="also the unrolled RNN (its first call traces a 128-step graph: minutes)")
    args = p.parse_args()

    import tf_keras as keras

    import har_data
    from edgeprune import machine, models, training
    from edgeprune.models.fastgrnn import FastGRNNCell

    training.pin_threads()
    ds = har_data.load(args.data, path=args.data_path, seed=0)
    x, y = ds.normalize(ds.train.x), ds.train.y
    xv, yv = ds.normalize(ds.val.x), ds.val.y
    d = training.FASTGRNN_DEFAULTS
    augment = training.augment_from(d, ds.mean, ds.std)
    rotate = training.rotate(d["rotate"], ds.mean, ds.std)
    jitter = training.jitter(d["augment"], d["augment"] / 2)

    def compiled(model: keras.Model, batch: int) -> keras.Model:
        steps = math.ceil(len(x) / batch)
        model.compile(optimizer=training.make_optimizer(
            d["lr"], schedule=d["schedule"], total_steps=steps * d["epochs"],
            warmup_steps=steps * d["warmup_epochs"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        return model

    def fitter(model: keras.Model, batch: int) -> Callable[[int], object]:
        return lambda e: model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    training.set_seed(0)
    model = compiled(models.fastgrnn_classifier(x.shape[1:], classes=2, seed=0), d["batch_size"])
    rng = np.random.default_rng(0)
    out = {
        "machine": machine.describe(), "windows": {"train": len(x), "val": len(xv)},
        "shuffle_and_augment": _median_seconds(
            lambda e: augment(x[rng.permutation(len(x))], rng), args.epochs),
        "of_which_rotate": _median_seconds(lambda e: rotate(x, rng), args.epochs),
        "of_which_jitter": _median_seconds(lambda e: jitter(x, rng), args.epochs),
        "fit_batch128": _median_seconds(fitter(model, d["batch_size"]), args.epochs),
        "validation_pass": _median_seconds(
            lambda e: model.evaluate(xv, yv, batch_size=max(d["batch_size"], 256), verbose=0),
            args.epochs),
    }
    model100 = compiled(models.fastgrnn_classifier(x.shape[1:], classes=2, seed=0), 100)
    out["fit_batch100"] = _median_seconds(fitter(model100, 100), args.epochs)
    if not args.unrolled:
        print(json.dumps(out, indent=1))
        return
    cell = FastGRNNCell(80, 5, 40, "sigmoid", "tanh", seed=0, name="fastgrnn_cell")
    inputs = keras.Input(shape=x.shape[1:])
    unrolled = keras.Model(inputs, keras.layers.Dense(2)(
        keras.layers.RNN(cell, unroll=True)(inputs)))
    start = time.perf_counter()
    compiled(unrolled, d["batch_size"]).fit(x[:256], y[:256], batch_size=128, verbose=0)
    out["unrolled_first_call_wall"] = round(time.perf_counter() - start, 3)
    out["fit_batch128_unrolled"] = _median_seconds(fitter(unrolled, d["batch_size"]),
                                                   args.epochs)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

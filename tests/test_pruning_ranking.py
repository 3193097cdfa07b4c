"""edgeprune.pruning, pure-numpy parts: global ranking, Minimum Threshold, baselines."""

import math

import numpy as np
import pytest

import edgeprune  # noqa: F401
from edgeprune.pruning import (
    allocate,
    allocate_erk,
    allocate_uniform,
    floors,
    global_keep_masks,
    keep_masks,
    lamp_scores,
    select_smallest,
)
from edgeprune.pruning.ranking import global_threshold, num_pruned


def random_layers(seed, n_layers=None):
    rng = np.random.default_rng(seed)
    n_layers = n_layers or int(rng.integers(2, 7))
    shapes = [tuple(int(d) for d in rng.integers(1, 30, size=int(rng.integers(1, 4))))
              for _ in range(n_layers)]
    return [rng.normal(0, float(rng.uniform(0.01, 2.0)), size=sh) for sh in shapes]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("s", [0.0, 0.13, 0.5, 0.9, 0.999])
def test_global_threshold_is_kth_smallest_and_exact_k(seed, s):
    layers = random_layers(seed)
    flat = np.concatenate([np.abs(w).ravel() for w in layers])
    n = flat.size
    k = int(math.floor(s * n + 0.5))
    masks = global_keep_masks([np.abs(w) for w in layers], s, 0)
    pruned = np.concatenate([~m.ravel() for m in masks])
    assert pruned.sum() == k  # exact: within one weight of s*N
    assert abs(pruned.sum() - s * n) <= 0.5
    if k:
        kth = np.sort(flat)[k - 1]
        assert global_threshold(layers, s) == kth
        assert flat[pruned].max() == kth
        assert (flat[~pruned] >= kth).all()
    # allocate gives the same keep counts
    np.testing.assert_array_equal(allocate(layers, s, 0), [m.sum() for m in masks])


def test_ties_broken_by_index_deterministically():
    scores = np.array([1.0, 0.5, 0.5, 0.5, 2.0, 0.5])
    out = select_smallest(scores, 3)
    np.testing.assert_array_equal(out, [False, True, True, True, False, False])
    masks = global_keep_masks([np.zeros(4), np.zeros(4)], 0.5, 0)
    np.testing.assert_array_equal(np.concatenate(masks), [False] * 4 + [True] * 4)


@pytest.mark.parametrize("seed", range(5))
def test_min_threshold_floor_holds_and_target_still_holds(seed):
    rng = np.random.default_rng(seed)
    # one tiny-magnitude layer that plain global MP would wipe out
    layers = [rng.normal(0, 1.0, (40, 50)), rng.normal(0, 1e-3, (30, 10)),
              rng.normal(0, 0.5, (50, 20)), rng.normal(0, 1e-4, (3,))]
    n = sum(w.size for w in layers)
    s, mt = 0.9, 0.02
    plain = allocate(layers, s, 0)
    assert plain[1] == 0 and plain[3] == 0  # the collapse MT prevents
    keep = allocate(layers, s, mt)
    floor = floors([w.size for w in layers], mt)
    assert floor[3] == 3  # smaller than the floor: stays dense
    assert (keep >= floor).all()
    assert keep[3] == 3
    assert keep.sum() == n - num_pruned(s, n)
    masks = global_keep_masks([np.abs(w) for w in layers], s, mt)
    # a clamped layer keeps its largest magnitudes
    w1 = np.abs(layers[1]).ravel()
    assert np.sort(w1)[-floor[1]:].min() == w1[masks[1].ravel()].min()
    # clamped layers keep exactly their floor; the others follow one global threshold
    free = [i for i in range(len(layers)) if keep[i] > floor[i]]
    assert free and all(keep[i] == floor[i] for i in range(len(layers)) if i not in free)
    kept = np.concatenate([np.abs(layers[i])[masks[i]] for i in free])
    dropped = np.concatenate([np.abs(layers[i])[~masks[i]] for i in free])
    assert kept.min() >= dropped.max()


def test_min_threshold_count_and_fraction():
    sizes = [1000, 10, 3]
    np.testing.assert_array_equal(floors(sizes, 5), [5, 5, 3])
    np.testing.assert_array_equal(floors(sizes, 0.0005), [1, 1, 1])  # ceil(0.5065)
    np.testing.assert_array_equal(floors(sizes, 0.0), [0, 0, 0])


@pytest.mark.bad_input
def test_infeasible_min_threshold_names_highest_feasible_sparsity():
    layers = [np.ones((10, 10)), np.ones((10, 10)), np.ones(5)]
    # floor 20 each -> keeps 20 + 20 + 5 = 45 of 205: max sparsity 160/205
    with pytest.raises(ValueError, match=r"highest feasible sparsity is 0\.780487") as e:
        allocate(layers, 0.9, 20)
    assert "Minimum Threshold" in str(e.value)
    best = float(str(e.value).split("highest feasible sparsity is ")[1].split()[0])
    keep = allocate(layers, best, 20)  # the advertised sparsity is feasible
    assert keep.tolist() == [20, 20, 5]


@pytest.mark.bad_input
@pytest.mark.parametrize("s", [-0.1, 1.0, 1.5, float("nan"), "0.5", None])
def test_bad_sparsity(s):
    with pytest.raises(ValueError, match="sparsity"):
        allocate([np.ones(10)], s)


@pytest.mark.bad_input
@pytest.mark.parametrize("mt", [-1, 1.0, 2.5, -0.1, True, "x"])
def test_bad_min_threshold(mt):
    with pytest.raises(ValueError, match="min_threshold"):
        allocate([np.ones(10)], 0.5, mt)


@pytest.mark.bad_input
def test_unknown_method_and_floor_on_fixed_allocation():
    with pytest.raises(ValueError, match="unknown pruning method 'magic'"):
        keep_masks("magic", [np.ones(4)], 0.5)
    with pytest.raises(ValueError, match="no Minimum Threshold"):
        keep_masks("uniform", [np.ones(4)], 0.5, min_threshold=0.01)
    with pytest.raises(ValueError, match="nothing prunable"):
        keep_masks("global", [], 0.5)


@pytest.mark.parametrize("s", [0.0, 0.01, 0.3, 0.8, 0.95, 0.999])
def test_erk_sums_to_target_and_favours_small_layers(s):
    shapes = [(3, 3, 3, 16), (3, 3, 16, 32), (800, 10), (10, 2)]
    sizes = np.array([np.prod(sh) for sh in shapes])
    keep = allocate_erk(shapes, s)
    assert keep.sum() == sizes.sum() - num_pruned(s, int(sizes.sum()))
    assert (keep <= sizes).all() and (keep >= 0).all()
    density = keep / sizes
    if not 0.05 < s < 0.99:  # extremes: all dense, or counts too small to compare
        return
    assert density[3] >= density[2]  # the small head is denser than the big matrix
    # RigL formula for the layers left sparse: density proportional to sum/prod
    sparse = np.flatnonzero(keep < sizes)
    raw = np.array([sum(sh) / np.prod(sh) for sh in shapes])
    ratio = density[sparse] / raw[sparse]
    np.testing.assert_allclose(ratio, ratio[0], rtol=0.05)


def test_uniform_rounding_matches_tfmot_rule():
    keep = allocate_uniform([10, 7, 1, 1000], 0.75)
    assert keep.tolist() == [2, 2, 1, 250]  # round-half-even(2.5)=2, max(.., 1)


def test_lamp_differs_from_global_on_differently_scaled_layers():
    rng = np.random.default_rng(0)
    layers = [rng.normal(0, 1.0, (50, 50)), rng.normal(0, 0.01, (50, 50))]
    g = allocate(layers, 0.5, 0)
    lamp = [m.sum() for m in keep_masks("lamp", layers, 0.5)]
    assert g[1] < 0.05 * 2500  # global nearly wipes out the small-scale layer
    assert lamp[1] > 1000 and lamp != list(g)  # LAMP is scale-invariant per layer
    assert sum(lamp) == sum(g)
    # LAMP score of a layer's largest weight is 1, scores are scale-invariant
    sc = lamp_scores(layers)
    assert np.isclose(sc[0].max(), 1.0)
    np.testing.assert_allclose(lamp_scores([layers[0] * 7.0])[0], sc[0])


def test_random_is_seeded_and_exact():
    layers = [np.ones((20, 20)), np.ones(50)]
    a = keep_masks("random", layers, 0.6, seed=1)
    b = keep_masks("random", layers, 0.6, seed=1)
    c = keep_masks("random", layers, 0.6, seed=2)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any((x != y).any() for x, y in zip(a, c, strict=True))
    assert sum(int((~m).sum()) for m in a) == num_pruned(0.6, 450)
    # nested across sparsities (gradual random pruning keeps what it pruned)
    d = keep_masks("random", layers, 0.8, seed=1)
    assert all((~x | y).all() for x, y in zip(d, a, strict=True))


def test_iht_is_per_matrix_topk():
    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(8, 8)), rng.normal(scale=0.01, size=(4, 4))]
    masks = keep_masks("iht", layers, 0.75)
    assert [int(m.sum()) for m in masks] == [16, 4]
    for w, m in zip(layers, masks, strict=True):
        assert np.abs(w[m]).min() >= np.abs(w[~m]).max()


@pytest.mark.parametrize("method", ["global", "global_mt", "uniform", "erk", "lamp",
                                    "random", "iht"])
def test_every_method_hits_the_target(method):
    layers = random_layers(11, 4)
    n = sum(w.size for w in layers)
    masks = keep_masks(method, layers, 0.7)
    pruned = sum(int((~m).sum()) for m in masks)
    tol = len(layers) if method in ("uniform", "iht") else 0  # per-layer rounding
    assert abs(pruned - num_pruned(0.7, n)) <= tol

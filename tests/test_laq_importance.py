"""Layer importance (paper eq. 1-4) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from serlaq.errors import ConfigError
from serlaq.laq.importance import (
    DEFAULT_WEIGHTS,
    TABLE3_WEIGHTS,
    average_bits,
    histogram_entropy_bits,
    layer_importance,
    rank_by_importance,
)

# Two small layers worked out by hand with B = 2 (4 histogram bins over [min, max]):
#   a = [0, 1, 2, 3]: one value per bin -> H = 2 bits, N_E = 1; var = 1.25
#   b = [0]*6 + [4]*2: bins hold 6/8 and 2/8 -> H = 0.811278 bits, N_E = 0.405639; var = 3
A = np.array([[0.0, 1.0], [2.0, 3.0]])
B = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 4.0]])


def hand_values() -> dict[str, dict[str, float]]:
    h_b = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    return {
        "a": {"n_p": 4 / 12, "n_e": 2 / 2, "n_v": math.log(math.e - 1 + 1.25 / 3), "var": 1.25},
        "b": {"n_p": 8 / 12, "n_e": h_b / 2, "n_v": 1.0, "var": 3.0},
    }


def test_statistics_match_hand_computation() -> None:
    stats = {s.name: s for s in layer_importance({"a": A, "b": B}, reference_bits=2)}
    for name, want in hand_values().items():
        s = stats[name]
        assert s.n_p == pytest.approx(want["n_p"], abs=1e-12)
        assert s.n_e == pytest.approx(want["n_e"], abs=1e-12)
        assert s.n_v == pytest.approx(want["n_v"], abs=1e-12)
        assert s.variance == pytest.approx(want["var"], abs=1e-12)
    assert stats["b"].entropy_bits == pytest.approx(0.8112781244591328, abs=1e-12)


def test_importance_is_the_weighted_sum_of_eq4() -> None:
    want = hand_values()
    for w_p, w_e, w_v in [DEFAULT_WEIGHTS, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.33, 0.33, 0.33)]:
        stats = {s.name: s for s in layer_importance({"a": A, "b": B}, (w_p, w_e, w_v), reference_bits=2)}
        for name, v in want.items():
            expected = w_p * v["n_p"] + w_e * (1 - v["n_e"]) + w_v * v["n_v"]
            assert stats[name].importance == pytest.approx(expected, abs=1e-12)
    # default weights, explicitly: a = 0.11/3 + 0 + 0.88 ln(e - 1 + 5/12)
    a = layer_importance({"a": A, "b": B}, reference_bits=2)[0]
    assert a.importance == pytest.approx(0.11 / 3 + 0.88 * math.log(math.e - 1 + 5 / 12), abs=1e-12)


def test_default_reference_bits_uses_256_bins() -> None:
    # 256 evenly spread values over [0, 255] fill all 2^8 bins once: H = 8 bits, N_E = 1
    w = torch.arange(256, dtype=torch.float32).reshape(16, 16)
    (s,) = layer_importance({"w": w})
    assert s.entropy_bits == pytest.approx(8.0)
    assert s.n_e == pytest.approx(1.0)
    assert s.n_v == pytest.approx(1.0)  # the only layer has the max variance: ln(e) = 1


def test_constant_layers_have_zero_entropy_and_lowest_variance_term() -> None:
    stats = layer_importance({"c": np.full((3, 3), 0.25), "z": np.zeros((2, 2))}, reference_bits=8)
    for s in stats:
        assert s.entropy_bits == 0.0
        assert s.n_v == pytest.approx(math.log(math.e - 1))  # every variance 0 -> ratio 0


def test_histogram_entropy_of_two_equal_halves_is_one_bit() -> None:
    assert histogram_entropy_bits(np.array([-1.0, -1.0, 1.0, 1.0]), 256) == pytest.approx(1.0)


def test_ranking_is_highest_first_and_stable() -> None:
    stats = layer_importance({"a": A, "b": B, "a2": A.copy()}, reference_bits=2)
    ranked = [s.name for s in rank_by_importance(stats)]
    assert ranked == ["b", "a", "a2"]  # b is more important here; a and a2 tie -> forward order


def test_average_bits_is_eq6() -> None:
    assert average_bits({"a": 100, "b": 300}, {"a": 8, "b": 1}) == pytest.approx((100 * 8 + 300) / 400)
    with pytest.raises(ValueError, match="'b'"):
        average_bits({"a": 1, "b": 1}, {"a": 2})


def test_table3_has_the_papers_nine_rows_ending_with_the_default() -> None:
    assert len(TABLE3_WEIGHTS) == 9
    assert TABLE3_WEIGHTS[-1] == DEFAULT_WEIGHTS == (0.11, 0.01, 0.88)


@pytest.mark.parametrize("weights", [(1.0, 2.0), (0.1, -0.1, 0.5), (float("nan"), 0.0, 1.0)])
def test_bad_weights_are_a_config_error_naming_the_field(weights: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="laq.weights"):
        layer_importance({"a": A}, weights)


def test_non_finite_weights_are_rejected_with_the_layer_name() -> None:
    with pytest.raises(ValueError, match="'bad'"):
        layer_importance({"bad": np.array([1.0, np.nan])})

"""Temperature scaling and expected calibration error on synthetic, known-miscalibrated predictions."""

from __future__ import annotations

import numpy as np
import pytest

from ecom_kfp.contracts.serving import LevelThreshold, Thresholds
from ecom_kfp.evaluate import calibration as cal
from ecom_kfp.evaluate import html_report


def _overconfident(n: int, classes: int, sharpen: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), and a model that reports softmax(sharpen * z): over-confident when sharpen > 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, classes))
    true_p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=row) for row in true_p])
    reported = np.exp(sharpen * z) / np.exp(sharpen * z).sum(axis=1, keepdims=True)
    return reported.astype(np.float32), labels


def test_temperature_fitted_on_validation_undoes_over_confidence_and_lowers_test_ece():
    val_p, val_y = _overconfident(3000, 6, sharpen=3.0, seed=1)
    test_p, test_y = _overconfident(3000, 6, sharpen=3.0, seed=2)
    temperature = cal.fit_temperature(val_p, val_y)
    assert temperature == pytest.approx(3.0, rel=0.1)  # the sharpening the model applied
    correct = test_p.argmax(axis=1) == test_y
    result = cal.calibrate_level(1, temperature, len(val_y), "val", test_p, test_y, correct)
    assert result.ece_before > 0.15  # badly over-confident
    assert result.ece_after < 0.03 and result.ece_after < result.ece_before / 5
    assert result.nll_after < result.nll_before
    # temperature scaling never changes the answer
    assert (cal.temperature_scale(test_p, temperature).argmax(axis=1) == test_p.argmax(axis=1)).all()


def test_cross_fitting_scales_each_half_by_the_temperature_of_the_other():
    p, y = _overconfident(2001, 6, sharpen=3.0, seed=5)
    even, odd = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    folds = cal.fold_temperatures(p, y)
    scaled = cal.cross_fitted_scale(p, folds)
    np.testing.assert_allclose(scaled[even], cal.temperature_scale(p[even], cal.fit_temperature(p[odd], y[odd])))
    np.testing.assert_allclose(scaled[odd], cal.temperature_scale(p[odd], cal.fit_temperature(p[even], y[even])))
    correct = p.argmax(axis=1) == y
    judged = cal.calibrate_level(1, cal.fit_temperature(p, y), len(y), "test", p, y, correct, folds)
    assert judged.ece_after == pytest.approx(cal.expected_calibration_error(scaled.max(axis=1), correct))
    assert judged.ece_after < judged.ece_before / 5
    with pytest.raises(ValueError, match="1 examples"):
        cal.fold_temperatures(p[:1], y[:1])


def test_a_test_split_temperature_is_kept_only_when_held_out_examples_gain():
    sharp_p, sharp_y = _overconfident(2000, 6, sharpen=3.0, seed=6)
    assert cal.fit_temperature_cross_checked(sharp_p, sharp_y) == (
        pytest.approx(cal.fit_temperature(sharp_p, sharp_y)), cal.fold_temperatures(sharp_p, sharp_y))
    # Rows alternate between an over- and an under-confident model: each half's temperature is the
    # opposite of what the other half needs, so scaling does not carry over to new examples.
    soft_p, soft_y = _overconfident(2000, 6, sharpen=0.3, seed=7)
    mixed_p, mixed_y = np.empty_like(sharp_p), np.empty_like(sharp_y)
    mixed_p[0::2], mixed_p[1::2] = sharp_p[:1000], soft_p[:1000]
    mixed_y[0::2], mixed_y[1::2] = sharp_y[:1000], soft_y[:1000]
    assert cal.fit_temperature(mixed_p, mixed_y) != pytest.approx(1.0, abs=0.05)
    assert cal.negative_log_likelihood(cal.cross_fitted_scale(mixed_p, cal.fold_temperatures(mixed_p, mixed_y)),
                                       mixed_y) > \
        cal.negative_log_likelihood(mixed_p, mixed_y)
    assert cal.fit_temperature_cross_checked(mixed_p, mixed_y) == (1.0, ())


def test_a_calibrated_model_keeps_a_temperature_near_one():
    p, y = _overconfident(3000, 6, sharpen=1.0, seed=3)
    assert cal.fit_temperature(p, y) == pytest.approx(1.0, abs=0.08)


def test_under_confident_model_gets_a_temperature_below_one():
    p, y = _overconfident(3000, 6, sharpen=0.4, seed=4)
    assert cal.fit_temperature(p, y) == pytest.approx(0.4, rel=0.1)


def test_one_temperature_fits_folds_whose_classes_differ():
    """Cross-validation folds have vocabularies of their own: the pooled fit minimises the NLL of all
    their examples together, and is the plain fit when there is one part."""
    six, six_y = _overconfident(2000, 6, sharpen=2.0, seed=5)
    four, four_y = _overconfident(1000, 4, sharpen=2.0, seed=6)
    pooled = cal.fit_pooled_temperature([(six, six_y), (four, four_y)])
    assert pooled == pytest.approx(2.0, rel=0.1)
    assert cal.fit_pooled_temperature([(six, six_y)]) == cal.fit_temperature(six, six_y)

    def pooled_nll(t: float) -> float:
        return (cal.negative_log_likelihood(six, six_y, t) * 2000 + cal.negative_log_likelihood(four, four_y, t) * 1000) / 3000

    assert pooled_nll(pooled) <= min(pooled_nll(pooled * 0.97), pooled_nll(pooled * 1.03))
    # Neither part's own temperature is the pooled one unless they agree.
    soft, soft_y = _overconfident(1000, 4, sharpen=0.5, seed=7)
    between = cal.fit_pooled_temperature([(six, six_y), (soft, soft_y)])
    assert cal.fit_temperature(soft, soft_y) < between < cal.fit_temperature(six, six_y)


def test_ece_and_reliability_bins_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.55, 0.15])
    correct = np.array([True, False, True, True, False])
    bins = {round(b.low, 2): b for b in cal.reliability_bins(confidence, correct, bins=10) if b.examples}
    assert set(bins) == {0.9, 0.5, 0.1}
    assert (bins[0.9].examples, bins[0.9].accuracy, bins[0.9].mean_confidence) == (2, 0.5, pytest.approx(0.95))
    # 2/5 * |0.5 - 0.95| + 2/5 * |1 - 0.55| + 1/5 * |0 - 0.15|
    assert cal.expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.4 * 0.45 + 0.4 * 0.45 + 0.03)
    assert cal.reliability_bins(np.array([1.0]), np.array([True]), bins=10)[-1].examples == 1  # 1.0 is in the last bin
    with pytest.raises(ValueError):
        cal.expected_calibration_error(np.array([]), np.array([], dtype=bool))


def test_the_reliability_line_leaves_out_bins_too_small_to_read():
    """A one-product bin at 0.35 confidence is a marker of its own, not a point the line bends to."""
    confidence = np.array([0.35] + [0.95] * 8 + [0.75] * 5)
    correct = np.array([False] + [True] * 7 + [False] + [True] * 3 + [False] * 2)
    joined, loose = html_report.split_bins(cal.reliability_bins(confidence, correct, bins=10))
    assert [(round(b.low, 2), b.examples) for b in joined] == [(0.7, 5), (0.9, 8)]
    assert [(round(b.low, 2), b.examples) for b in loose] == [(0.3, 1)]


def test_evaluate_scales_probabilities_exactly_as_the_served_thresholds_do():
    """Thresholds chosen on evaluate's calibrated confidence hold for what predict computes from thresholds.json."""
    p, _ = _overconfident(50, 4, sharpen=2.0, seed=5)
    served = Thresholds(0.9, (LevelThreshold(1, 0.5, 0.9, 0.5),), (1.7,))
    assert np.allclose(served.calibrate(1, p), cal.temperature_scale(p, 1.7), atol=1e-6)


def test_no_mistakes_on_validation_leaves_the_temperature_at_one():
    """The likelihood of an always-right model rises without bound as T -> 0; there is nothing to fit."""
    p = np.array([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    assert cal.fit_temperature(p, np.array([0, 1, 0])) == 1.0


def test_row_blocks_give_the_whole_matrix_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The arithmetic runs block by block (memory); blocks of two rows must change no figure."""
    from scipy.special import logsumexp

    from ecom_kfp.evaluate.metrics import LevelPredictions

    p, y = _overconfident(37, 11, sharpen=2.0, seed=5)
    log_p = np.log(np.clip(p.astype(np.float64), cal.PROBABILITY_FLOOR, 1.0)) / 1.7
    expected_scaled = np.exp(log_p - logsumexp(log_p, axis=1, keepdims=True))
    expected_nll = float(np.mean(logsumexp(log_p, axis=1) - log_p[np.arange(len(y)), y]))
    whole = LevelPredictions.from_probabilities(2, p, y, 3, 1.7)
    monkeypatch.setattr(cal, "BLOCK_CELLS", 22)
    blocks = list(cal.row_blocks(len(y), 11))
    assert len(blocks) == 19 and np.concatenate([np.arange(37)[b] for b in blocks]).tolist() == list(range(37))
    np.testing.assert_allclose(cal.temperature_scale(p, 1.7), expected_scaled, rtol=1e-12)
    assert cal.temperature_scale(p, 1.7, dtype=np.float32).dtype == np.float32
    assert cal.negative_log_likelihood(p, y, 1.7) == pytest.approx(expected_nll, rel=1e-12)
    blocked = LevelPredictions.from_probabilities(2, p, y, 3, 1.7)
    for field in ("y_pred", "confidence", "raw_confidence", "p_true", "top_k_hit"):
        np.testing.assert_allclose(getattr(blocked, field), getattr(whole, field), rtol=1e-12)
    np.testing.assert_allclose(whole.confidence, expected_scaled.max(axis=1), rtol=1e-12)

"""Every metric against values computed by hand on small fixed predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecom_kfp.evaluate import metrics as m


def test_from_probabilities_reduces_softmax_to_per_example_numbers():
    probs = np.array([[0.7, 0.2, 0.1],
                      [0.1, 0.3, 0.6],
                      [0.2, 0.5, 0.3],
                      [0.4, 0.4, 0.2]])
    p = m.LevelPredictions.from_probabilities(1, probs, np.array([0, 1, 2, 1]), k=2)
    assert p.y_pred.tolist() == [0, 2, 1, 0]
    assert p.confidence.tolist() == [0.7, 0.6, 0.5, 0.4]
    assert p.p_true.tolist() == [0.7, 0.3, 0.3, 0.4]
    # Example 1: 0.3 is second of (0.1, 0.3, 0.6) -> in top 2; example 3: tie 0.4 = 0.4 counts as a hit.
    assert p.top_k_hit.tolist() == [True, True, True, True]
    assert m.LevelPredictions.from_probabilities(1, probs, np.array([2, 0, 0, 2]), k=1).top_k_hit.tolist() == \
        [False, False, False, False]
    assert m.LevelPredictions.from_probabilities(1, probs, np.array([0, 1, 2, 1]), k=9).k == 3


def test_accuracy_and_business_value_weighted_score():
    y_true, y_pred = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    # correct = 1,1,0,1 with weights 1,2,3,4 -> (1 + 2 + 4) / 10
    assert m.weighted_score(y_true == y_pred, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.7)
    # the per-class form: W_0=1 acc 1, W_1=5 acc 0.5, W_2=4 acc 1 -> (1 + 2.5 + 4) / 10
    assert m.class_values(y_true, np.array([1.0, 2.0, 3.0, 4.0])) == {0: 1.0, 1: 5.0, 2: 4.0}
    with pytest.raises(ValueError, match="sum to zero"):
        m.weighted_score(y_true == y_pred, np.zeros(4))


def test_f1_macro_and_weighted():
    # class 0: P=1, R=2/3, F1=0.8 (support 3); class 1: P=1/2, R=1, F1=2/3 (support 1)
    macro, weighted = m.f1_macro_weighted(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    assert macro == pytest.approx((0.8 + 2 / 3) / 2)
    assert weighted == pytest.approx((3 * 0.8 + 2 / 3) / 4)
    # a predicted class never true counts with F1 0 in the macro mean
    macro, _ = m.f1_macro_weighted(np.array([0, 0]), np.array([0, 5]))
    assert macro == pytest.approx((2 / 3 + 0) / 2)


def test_log_loss():
    assert m.log_loss(np.array([0.5, 0.25])) == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert m.log_loss(np.array([0.0])) == pytest.approx(-math.log(m.LOG_LOSS_EPSILON))


def test_coverage_curve_and_threshold_for_target_precision():
    correct = np.array([True, True, False, True])
    confidence = np.array([0.9, 0.8, 0.6, 0.3])
    curve = {p.threshold: p for p in m.coverage_curve(correct, confidence)}
    assert (curve[0.0].accepted, curve[0.0].coverage, curve[0.0].precision) == (4, 1.0, 0.75)
    assert (curve[0.5].accepted, curve[0.5].coverage) == (3, 0.75)
    assert curve[0.5].precision == pytest.approx(2 / 3)
    assert (curve[0.7].accepted, curve[0.7].precision) == (2, 1.0)
    assert curve[0.95].accepted == 0 and curve[0.95].precision is None
    best = m.threshold_for_precision(correct, confidence, 0.95)
    # exact: the lowest confidence above the wrong 0.6, not the next point of the 0.01 grid
    assert (best.threshold, best.accepted, best.coverage, best.precision) == (0.8, 2, 0.5, 1.0)
    assert m.threshold_for_precision(~correct, confidence, 0.95) is None
    # 3 of 4 right overall: a 0.75 target accepts everything, at the lowest confidence
    assert m.threshold_for_precision(correct, confidence, 0.75).threshold == 0.3


def test_threshold_for_precision_accepts_ties_together():
    # both 0.8 share a fate: accepting one means accepting the other (precision 2/3 < 0.9)
    correct = np.array([True, True, False, True])
    confidence = np.array([0.9, 0.8, 0.8, 0.3])
    best = m.threshold_for_precision(correct, confidence, 0.9)
    assert (best.threshold, best.accepted) == (0.9, 1)


def test_folded_examples_are_always_wrong():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    # example 2 is recorded as other (0) because its class was folded; the model says other
    p = m.LevelPredictions.from_probabilities(1, probs, np.array([0, 1, 0]), k=2,
                                              folded=np.array([False, False, True]))
    assert p.correct.tolist() == [True, True, False]
    assert p.top_k_hit.tolist() == [True, True, False]
    result, _ = m.level_metrics(p, np.ones(3), confidence_threshold=0.5, target_precision=0.9)
    assert result.accuracy == pytest.approx(2 / 3)
    # macro F1 over {0, 1, folded}: class 0 P=1/2 R=1 -> 2/3; class 1 -> 1; folded never predicted -> 0
    assert result.macro_f1 == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_temperature_changes_confidence_not_predictions():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.5, 0.3]])
    plain = m.LevelPredictions.from_probabilities(1, probs, np.array([0, 2]), k=1)
    softened = m.LevelPredictions.from_probabilities(1, probs, np.array([0, 2]), k=1, temperature=2.0)
    assert softened.y_pred.tolist() == plain.y_pred.tolist()
    assert softened.raw_confidence.tolist() == plain.confidence.tolist()
    # softmax(log p / 2) of (0.9, 0.05, 0.05): sqrt weights 0.949, 0.224, 0.224
    expected = math.sqrt(0.9) / (math.sqrt(0.9) + 2 * math.sqrt(0.05))
    assert softened.confidence[0] == pytest.approx(expected)
    assert softened.p_true.tolist() == plain.p_true.tolist()  # log loss stays on the model's own output


def test_confusion_matrix_over_most_valuable_classes_pools_the_rest():
    y_true = np.array([0, 0, 1, 2, 2, 3])
    y_pred = np.array([0, 1, 1, 2, 0, 3])
    weights = np.array([1.0, 1.0, 10.0, 3.0, 3.0, 0.5])
    classes = m.most_valuable_classes(y_true, weights, 2)
    assert classes == [1, 2]  # W = {0: 2, 1: 10, 2: 6, 3: 0.5}
    matrix = m.confusion_matrix(y_true, y_pred, classes)
    #               pred 1  pred 2  rest
    assert matrix.tolist() == [[1, 0, 0],   # true 1
                               [0, 1, 1],   # true 2 (one predicted 0 -> rest)
                               [1, 0, 2]]   # true 0, 0, 3 -> rest (one predicted 1)
    assert matrix.sum() == len(y_true)


def test_level_metrics_combines_everything():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    p = m.LevelPredictions.from_probabilities(2, probs, np.array([0, 1, 1, 1]), k=1)
    result, curve = m.level_metrics(p, np.array([1.0, 1.0, 2.0, 0.0]), confidence_threshold=0.65,
                                    target_precision=0.9)
    assert result.accuracy == 0.75
    assert result.weighted_score == pytest.approx(2 / 4)  # weights of correct: 1 + 1 + 0
    assert result.precision_at_threshold == 1.0 and result.coverage_at_threshold == 0.75  # 0.9, 0.8, 0.7
    # exact threshold: the lowest confidence (0.7) whose accepted set (0.9, 0.8, 0.7) is all right
    assert result.threshold_for_target_precision == 0.7 and result.coverage_at_target_precision == 0.75
    assert result.precision_at_target_threshold == 1.0
    assert len(curve) == len(m.COVERAGE_THRESHOLDS)

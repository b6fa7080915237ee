"""Smoke test of the cross-validated quality benchmark (benchmarks/bench_cv.py) at tiny settings:
two folds of 60 myntra-dev products, one epoch, through the real build, training and serving, and
the image probe (real ImageNet Lite0 weights) at 64 px; and the late fusion's gate on a made-up fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks import import_benchmark, run_benchmark

pytestmark = pytest.mark.slow


def test_cv_benchmark_tests_every_product_once_on_identical_folds(tmp_path: Path, myntra_dir: Path) -> None:
    result = run_benchmark("bench_cv", "--work", str(tmp_path), "--limit", "60", "--folds", "2", "--epochs", "1",
                           "--image-size", "32", "--models", "title,image,fused,baseline,image-probe", "--fusion",
                           "late", "--probe-image-size", "64",
                           env={"ECOM_KFP_SHARED_DATA": str(myntra_dir.parent)}, timeout=900)
    models = result["models"]
    # title+baseline: a mean; fused-*-branch: the late-fusion model's own branches, scored alone.
    assert set(models) == {"title", "image", "fused", "baseline", "image-probe", "title+baseline", "fused-title-branch",
                           "fused-image-branch"}
    for model in models.values():
        assert [f["fold"] for f in model["per_fold"]] == [0, 1]
        assert sum(f["products"] for f in model["per_fold"]) == 60  # each product tested exactly once
        assert all(0.0 <= f[f"level_{k}"] <= 1.0 for f in model["per_fold"] for k in (1, 2, 3))
        assert model["level_3"]["folds"] == 2
        assert set(model["calibration"]) == {"level_1", "level_2", "level_3"}
    assert models["title"]["minus_baseline"]["level_1"]["mean"] == pytest.approx(
        models["title"]["level_1"]["mean"] - models["baseline"]["level_1"]["mean"])
    assert len(result["late_fusion"]["per_fold"]) == 2
    # Inside one model only the answers the image changes can change from right to wrong or back.
    for fold, changes in enumerate(result["fused_vs_its_title_branch"]["per_fold"]):
        for k in (1, 2, 3):
            gain = models["fused"]["per_fold"][fold][f"level_{k}"] - models["fused-title-branch"]["per_fold"][fold][f"level_{k}"]
            c = changes[f"level_{k}"]
            assert gain == pytest.approx(c["changed_and_right"] - c["title_right_image_version_wrong"])
    # The branches were scored on the inputs the served model sees: its answers are theirs, fused.
    weight = result["settings"]["fused"]["late_fusion_weight"]
    fused_models = sorted(tmp_path.glob("*/fold-*/fused-*"))
    assert len(fused_models) == 2
    for fused in fused_models:
        served, title, image = (np.load(fused / name) for name in (
            "predictions.npz", "title-branch-predictions.npz", "image-branch-predictions.npz"))
        assert served["ids"].tolist() == title["ids"].tolist() == image["ids"].tolist()
        for k in (1, 2, 3):
            combined = title[f"level_{k}"] * image[f"level_{k}"] ** weight
            np.testing.assert_allclose(served[f"level_{k}"], combined / combined.sum(axis=1, keepdims=True), atol=1e-4)
    # Every trained model (title, image and fused, per fold) ran in one MLflow store of the run.
    from mlflow import MlflowClient

    stores = sorted(tmp_path.rglob("mlflow.db"))
    assert [store.parent.parent for store in stores] == [tmp_path]
    client = MlflowClient(f"sqlite:///{stores[0]}")
    assert len(client.search_runs([client.get_experiment_by_name("bench-cv").experiment_id])) == 3 * 2
    assert len(result["late_fusion_image_probe"]["per_fold"]) == 2
    assert result["image-probe"]["image_size"] == 64
    assert {f["gate"] for f in result["gated_late_fusion"]["per_fold"]} <= set(result["gated_late_fusion"]["gates_tried"])
    # The ungated grid is the gated grid's gate-1.0 column.
    for name, figure in result["late_fusion"]["level_3_by_weight_and_gate"].items():
        assert result["gated_late_fusion"]["level_3_by_weight_and_gate"][name] == figure


def test_gated_late_fusion_leaves_confident_titles_alone() -> None:
    bench_cv = import_benchmark("bench_cv")
    paths = {"confident": ("A", "B", "X"), "unsure": ("A", "B", "Y")}
    fold = bench_cv.Fold(0, list(paths), paths, bench_cv.Counter())
    classes = [["A"], ["A > B"], ["A > B > X", "A > B > Y"]]
    assert bench_cv.class_name(paths["unsure"], 3) == classes[2][1]

    def model(level_3: list[list[float]]) -> dict:
        return {"ids": np.array(list(paths)), "seconds": 1.0, "level_1": np.ones((2, 1)), "level_2": np.ones((2, 1)),
                "level_3": np.array(level_3)}

    # The title is sure of X for one product and unsure for the other; the image says Y for both.
    fold.add("title", model([[0.9, 0.1], [0.55, 0.45]]), classes)
    fold.add("image", model([[0.01, 0.99], [0.01, 0.99]]), classes)
    everywhere = fold.predicted("title", bench_cv.late_fusion(fold, 1.0))[3]
    gated = fold.predicted("title", bench_cv.late_fusion(fold, 1.0, gate=0.8))[3]
    assert everywhere.tolist() == ["A > B > Y", "A > B > Y"]
    assert gated.tolist() == ["A > B > X", "A > B > Y"]
    assert fold.correct("title", bench_cv.late_fusion(fold, 1.0, gate=0.8))[3].all()


def test_settings_added_later_keep_the_cache_keys_of_models_trained_before_them() -> None:
    bench_cv = import_benchmark("bench_cv")
    parser_defaults = dict(backbone="small-cnn", epochs=2, image_epochs=0, batch_size=32, learning_rate=3e-3,
                           logit_adjustment=0.0, image_head_weight=0.0, title_dropout=0.0, weights="",
                           freeze_backbone_epochs=0, title_char_buckets=0, seed=0, frozen_backbone=False,
                           image_size=64, fusion="joint", late_fusion_weight=bench_cv.LATE_FUSION_WEIGHT,
                           level_weights=bench_cv.LEVEL_WEIGHTS, deterministic=False)
    settings = bench_cv.model_settings(bench_cv.argparse.Namespace(**parser_defaults), "fused")
    # --level-weights' default is the weights every cached model was trained with: same key.
    assert settings["level_weights"] == [1.0, 1.0, 3.0]
    reweighted = bench_cv.model_settings(bench_cv.argparse.Namespace(**{**parser_defaults, "level_weights": "1,2,3"}),
                                         "fused")
    assert bench_cv.cache_key(reweighted) != bench_cv.cache_key(settings)
    before = {k: v for k, v in settings.items() if k not in bench_cv.LATER_SETTINGS}  # what an old cache holds
    assert bench_cv.cache_key(settings) == bench_cv.cache_key(before)
    late = bench_cv.model_settings(bench_cv.argparse.Namespace(**{**parser_defaults, "fusion": "late"}), "fused")
    heavier = bench_cv.model_settings(bench_cv.argparse.Namespace(
        **{**parser_defaults, "fusion": "late", "late_fusion_weight": 0.7}), "fused")
    ordered = bench_cv.model_settings(bench_cv.argparse.Namespace(**{**parser_defaults, "deterministic": True}),
                                      "fused")
    assert ordered["deterministic"] is True
    assert len({bench_cv.cache_key(settings), bench_cv.cache_key(late), bench_cv.cache_key(heavier),
                bench_cv.cache_key(ordered)}) == 4
    # A title model is never fused, whatever --fusion says.
    title = bench_cv.model_settings(bench_cv.argparse.Namespace(**{**parser_defaults, "fusion": "late"}), "title")
    assert title["fusion"] == "joint"

"""Label vocabularies: built from training only, rare classes folded into ``other`` and reported."""

from __future__ import annotations

from pathlib import Path

from ecom_kfp.contracts.labels import OTHER, Vocabulary, load_all, save_all
from ecom_kfp.tfrecord_build.labels import LabelSpace, OtherReason

TRAIN = [("A", "x", "1")] * 5 + [("A", "y", "2")] * 2 + [("B", "z")] * 4 + [("C",)] + [()]


def test_levels_follow_the_deepest_training_path_up_to_max_levels() -> None:
    assert LabelSpace.build(TRAIN, max_levels=4, min_class_count=1).num_levels == 3
    assert LabelSpace.build(TRAIN, max_levels=2, min_class_count=1).num_levels == 2
    assert LabelSpace.build([()], max_levels=4, min_class_count=1).num_levels == 1


def test_rare_classes_fold_into_other_and_are_reported() -> None:
    space = LabelSpace.build(TRAIN, max_levels=4, min_class_count=3)
    level1, level2, level3 = space.vocabularies
    assert level1.classes == (OTHER, "A", "B")  # most frequent first
    assert level2.classes == (OTHER, "A > x", "B > z")
    assert level3.classes == (OTHER, "A > x > 1")
    report = space.folding_report()
    assert report["level_1"]["folded_classes"] == {"C": 1}
    assert report["level_2"]["folded_classes"] == {"A > y": 2}
    assert report["level_3"]["folded_train_records"] == 2


def test_labels_and_why_other() -> None:
    space = LabelSpace.build(TRAIN, max_levels=4, min_class_count=3)
    kept = space.label(("A", "x", "1"))
    assert kept.ids == (1, 1, 1) and kept.other_reasons == (None, None, None)
    folded = space.label(("A", "y", "2"))
    assert folded.ids == (1, 0, 0)
    assert folded.other_reasons == (None, OtherReason.FOLDED, OtherReason.FOLDED)
    unseen = space.label(("Z", "q", "r"))
    assert unseen.ids == (0, 0, 0) and set(unseen.other_reasons) == {OtherReason.UNSEEN}
    short = space.label(("B", "z"))
    assert short.ids == (2, 2, 0) and short.other_reasons[2] == OtherReason.NO_CATEGORY
    assert set(space.label(None).other_reasons) == {OtherReason.UNMAPPED}


def test_vocabularies_round_trip(tmp_path: Path) -> None:
    space = LabelSpace.build(TRAIN, max_levels=4, min_class_count=1)
    save_all(space.vocabularies, str(tmp_path))
    loaded = load_all(str(tmp_path), space.num_levels)
    assert tuple(loaded) == space.vocabularies
    assert all(isinstance(v, Vocabulary) and v.classes[0] == OTHER for v in loaded)

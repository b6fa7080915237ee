"""Mapping source categories onto the Google Product Taxonomy (file format of the shared copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp.contracts import labels
from ecom_kfp.tfrecord_build import run
from ecom_kfp.tfrecord_build.taxonomy import TaxonomyError, TaxonomyMapping, read_taxonomy
from tests.tfrecord_build.helpers import DedupeOutput, small_config

MAPPING = """# source path <TAB> taxonomy id or path
Apparel > Topwear\t212
Apparel > Bottomwear\tApparel & Accessories > Clothing > Pants
Footwear\t187
Accessories > Watches\t201
"""


def test_taxonomy_file_parses(taxonomy_file: Path) -> None:
    taxonomy = read_taxonomy(str(taxonomy_file))
    lines = taxonomy_file.read_text(encoding="utf-8").splitlines()
    assert len(taxonomy) == sum(1 for line in lines if line and not line.startswith("#")) > 5000
    assert taxonomy["212"] == ("Apparel & Accessories", "Clothing", "Shirts & Tops")


def test_longest_prefix_wins(taxonomy_file: Path, tmp_path: Path) -> None:
    (tmp_path / "map.tsv").write_text(MAPPING + "Footwear > Shoes > Casual Shoes\t187\n")
    mapping = TaxonomyMapping.load(str(taxonomy_file), str(tmp_path / "map.tsv"))
    assert mapping.map(("Apparel", "Topwear", "Tshirts")) == ("Apparel & Accessories", "Clothing", "Shirts & Tops")
    assert mapping.map(("Footwear", "Sandal")) == ("Apparel & Accessories", "Shoes")
    assert mapping.map(("Personal Care", "Lips")) is None


@pytest.mark.parametrize("line", ["Apparel > Topwear\t999999999", "Apparel > Topwear\tNo Such > Path", "no tab here"])
def test_bad_mapping_lines_name_flag_and_line(taxonomy_file: Path, tmp_path: Path, line: str) -> None:
    (tmp_path / "map.tsv").write_text("# header\n" + line + "\n")
    with pytest.raises(TaxonomyError, match=r"--taxonomy-mapping .* line 2"):
        TaxonomyMapping.load(str(taxonomy_file), str(tmp_path / "map.tsv"))


def test_build_labels_with_the_taxonomy(dedupe_output: DedupeOutput, taxonomy_file: Path, tmp_path: Path) -> None:
    (tmp_path / "map.tsv").write_text(MAPPING)
    out = tmp_path / "out"
    report = run(small_config(dedupe_output.layout.root, str(out), taxonomy=str(taxonomy_file),
                              taxonomy_mapping=str(tmp_path / "map.tsv")))
    level1 = labels.Vocabulary.load(str(out / "labels"), 1)
    assert level1.classes == (labels.OTHER, "Apparel & Accessories")
    assert report.taxonomy["unmapped"] > 0 and "Personal Care > Fragrance > Perfume and Body Mist" in \
        report.taxonomy["unmapped_paths"]
    unmapped_records = sum(report.folding["other_records"][s]["level_1"]["unmapped"] for s in report.splits)
    assert 0 < unmapped_records <= report.taxonomy["unmapped"]

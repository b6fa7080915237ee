"""``ecom-kfp run-local``'s flags are checked before anything runs, each error naming its flag."""

import re

import pytest

from ecom_kfp.pipelines.local_run import LocalRunConfig
from ecom_kfp.settings import ConfigError


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(min_weighted_score=1.5), "--min-weighted-score=1.5: must be within [0, 1]"),
    (dict(min_weighted_score=-0.1), "--min-weighted-score=-0.1: must be within [0, 1]"),
    (dict(products=0), "--products=0: must be positive"),
    (dict(epochs=0), "--epochs=0: must be positive"),
    (dict(image_size=16), "--image-size=16: must be at least 32"),
    (dict(out=""), "--out='': must name a directory"),
    (dict(train_seeds=[]), "--train-seeds=[]: must name 1 to 16 seeds"),
    (dict(train_seeds=[1, 1]), "--train-seeds=[1, 1]: names a seed twice"),
])
def test_a_flag_out_of_range_is_refused_by_name(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        LocalRunConfig(**overrides).validate()
    LocalRunConfig().validate()

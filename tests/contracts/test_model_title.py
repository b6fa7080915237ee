"""The text a model reads for a product: its title, then its catalog attributes (``model_title``)."""

from __future__ import annotations

import json

from ecom_kfp.contracts.features import MAX_ATTRIBUTE_CHARS, model_title


def test_model_title_adds_one_word_per_present_attribute():
    row = json.dumps({"Gender": "Men", "usage": "Smart Casual", "base_colour": "Navy-Blue", "season": "",
                      "year": None})
    assert model_title("Peter England Jeans", row, ["gender", "usage", "baseColour", "season", "year", "absent"]) \
        == "Peter England Jeans gendermen usagesmartcasual basecolournavyblue"
    assert model_title("Shirt", row, []) == "Shirt"
    assert model_title("Shirt", "{not json", ["gender"]) == "Shirt"
    assert model_title("Shirt", '["a list"]', ["gender"]) == "Shirt"
    # A pyfunc request's null reaches the model as NaN (MLflow's schema enforcement): no "gendernan".
    assert model_title("Shirt", {"gender": float("nan"), "usage": "Casual"}, ["gender", "usage"]) \
        == "Shirt usagecasual"
    assert model_title("Shirt", {"gender": "x" * 1000}, ["gender"]) == "Shirt gender" + "x" * MAX_ATTRIBUTE_CHARS

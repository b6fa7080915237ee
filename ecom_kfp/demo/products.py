"""Clean demo products: class, brand, colour, title, price and image style.

Titles follow the word order real marketplaces use per family, e.g.
``Roadway Men Slim Fit Navy Blue Checked Casual Shirt`` or
``Vantro S24C550H 24-inch Full HD IPS Monitor Black``, and name the colour and pattern that are
actually drawn, so title and image agree as they do in a real listing.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from ecom_kfp.demo.drawing import FABRIC_SHAPES, Style, random_style
from ecom_kfp.demo.taxonomy import BRANDS, LEAVES, Leaf

_PATTERN_WORDS = {"solid": "Solid", "striped": "Striped", "checked": "Checked", "dotted": "Polka Dot"}
_MODEL_LETTERS = "ABCDEFGHJKLMNPRSTUVWXZ"


@dataclass(frozen=True)
class ProductSpec:
    """Everything needed to write one product's catalog line and draw its image."""

    product_id: str
    leaf: Leaf
    brand: str
    colour: str
    title: str
    price: float
    style: Style


def _zipf_choice(rng: random.Random, options: tuple[str, ...]) -> str:
    return rng.choices(options, weights=[1 / (rank + 1) for rank in range(len(options))])[0]


def model_number(rng: random.Random, brand: str) -> str:
    """A model number in the style of ``S24C550H``: brand initial, size, series, number, variant."""
    return (f"{brand[0].upper()}{rng.randint(10, 99)}{rng.choice(_MODEL_LETTERS)}"
            f"{rng.randint(100, 999)}{rng.choice(_MODEL_LETTERS)}")


def _price(rng: random.Random, base: float) -> float:
    value = base * rng.lognormvariate(0.0, 0.35)
    # Retail price endings: x.99 below 100, whole amounts ending in 9 above.
    return round(int(value) + 0.99, 2) if value < 100 else float(int(value / 10) * 10 + 9)


def _title(rng: random.Random, leaf: Leaf, brand: str, colour: str, pattern: str) -> str:
    noun = rng.choice(leaf.nouns)
    attribute = rng.choice(leaf.attributes)
    if leaf.family == "apparel":
        words = [brand, rng.choice(leaf.audiences), attribute, colour]
        if pattern != "solid" or rng.random() < 0.3:
            words.append(_PATTERN_WORDS[pattern])
        words.append(noun)
    elif leaf.family in ("footwear", "accessories"):
        words = [brand, rng.choice(leaf.audiences), colour, attribute, noun, model_number(rng, brand)]
    elif leaf.family == "electronics":
        words = [brand, model_number(rng, brand), rng.choice(leaf.specs), attribute, noun, colour]
    else:  # home and sports lead with a product line name, as their listings do
        line = rng.choice(("Classic", "Pro", "Essentials", "Prime", "Signature", "Active", "Elite"))
        words = [brand, line, rng.choice(leaf.specs), attribute, noun, colour]
    return " ".join(words)


def product_id(index: int) -> str:
    """Catalog id of the ``index``-th product (0-based)."""
    return f"P{index + 1:06d}"


def make_product(seed: int, index: int, leaf: Leaf | None = None) -> ProductSpec:
    """Draw one product, a pure function of ``(seed, index)`` and the optional forced ``leaf``.

    Each product has its own random generator, so products do not shift when the catalog size
    or the planted faults change.
    """
    rng = random.Random(f"ecom-kfp-demo/{seed}/{index}")
    if leaf is None:
        leaf = rng.choices(LEAVES, weights=[leaf.weight for leaf in LEAVES])[0]
    brand = _zipf_choice(rng, BRANDS[leaf.family])
    colour = rng.choice(leaf.colours)
    style = random_style(rng, colour, leaf.shape in FABRIC_SHAPES)
    return ProductSpec(product_id=product_id(index), leaf=leaf, brand=brand, colour=colour,
                       title=_title(rng, leaf, brand, colour, style.pattern),
                       price=_price(rng, leaf.base_price), style=style)


def short_title(spec: ProductSpec) -> str:
    """A two-word title (colour + noun's last word), too short for e-CLIP's 3-token rule."""
    return f"{spec.colour.split()[-1]} {spec.leaf.nouns[0].split()[-1]}"


def garbage_title(rng: random.Random) -> str:
    """Symbols only: empty once special characters are replaced by spaces."""
    return "".join(rng.choice(string.punctuation) for _ in range(rng.randint(3, 8)))

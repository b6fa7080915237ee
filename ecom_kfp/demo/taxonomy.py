"""The demo catalog's category tree, brands and colours.

Each :class:`Leaf` is one class the classifier should learn: where it sits in the tree (3 or 4
levels, level 1 most general), how common it is, what it is worth to the business, which drawing
it gets (:mod:`ecom_kfp.demo.drawing`) and the words its titles are made of. Frequencies are
deliberately uneven, as in real catalogs, so class imbalance and the ``other`` fold are exercised.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp.contracts.labels import SEPARATOR

#: Colour name (as it appears in titles) -> RGB of the drawn product.
COLOURS: dict[str, tuple[int, int, int]] = {
    "Black": (32, 32, 34),
    "White": (236, 236, 232),
    "Navy Blue": (28, 42, 92),
    "Blue": (42, 92, 200),
    "Light Blue": (140, 185, 230),
    "Red": (200, 36, 42),
    "Maroon": (112, 26, 42),
    "Green": (42, 140, 62),
    "Olive": (112, 116, 46),
    "Grey": (128, 128, 130),
    "Charcoal": (62, 64, 70),
    "Beige": (214, 194, 158),
    "Brown": (120, 76, 42),
    "Tan": (190, 140, 90),
    "Yellow": (236, 200, 42),
    "Mustard": (200, 160, 32),
    "Orange": (236, 120, 32),
    "Pink": (236, 130, 170),
    "Purple": (112, 60, 150),
    "Teal": (22, 130, 130),
    "Silver": (192, 194, 200),
    "Gold": (206, 166, 62),
    "Rose Gold": (220, 160, 140),
    "Cream": (240, 230, 200),
    "Copper": (184, 115, 51),
}

#: Brands per product family, most frequent first (drawn with Zipf-like weights).
BRANDS: dict[str, tuple[str, ...]] = {
    "apparel": ("Roadway", "Urbanloom", "Northvale", "Indigo Mill", "Aster & Co", "Cottonfield",
                "Mavric", "Hemline", "Tailorbird", "Kora"),
    "footwear": ("Kestrel", "Stridewell", "Pacer", "Cobbleton", "Sole Theory", "Trailmark"),
    "accessories": ("Aurelio", "Fastrack Lane", "Carryall", "Timevale", "Lumen Optics", "Capstone"),
    "electronics": ("Vantro", "Sonique", "Helix", "Orbitel", "Lumina", "Kairo", "Zentek", "Pixelon"),
    "home": ("Homestead", "Kitchenary", "Copperline", "Oakhaven", "Brightnest", "Mugworth"),
    "sports": ("Velox", "Goalpost", "Ironform", "Ridgeway Cycles", "Court King"),
}

AUDIENCE_ADULT = ("Men", "Women", "Unisex")
AUDIENCE_ALL = ("Men", "Women", "Unisex", "Boys", "Girls")


@dataclass(frozen=True)
class Leaf:
    """One leaf class of the demo tree.

    Attributes:
        path: Category path, level 1 first.
        weight: Relative frequency in the catalog.
        business_value: Weight of the class in business-value scoring (``business_value.csv``).
        shape: Key of the drawing in :data:`ecom_kfp.demo.drawing.PAINTERS`.
        family: Key of :data:`BRANDS` and of the title template.
        colours: Colours the product comes in (keys of :data:`COLOURS`).
        nouns: Product nouns for titles, e.g. "Casual Shirt".
        attributes: Descriptive words for titles, e.g. "Slim Fit".
        specs: Size or spec strings for titles, e.g. "24 cm"; empty when the family has none.
        base_price: Median price.
        audiences: Who it is for (apparel, footwear, accessories); empty otherwise.
    """

    path: tuple[str, ...]
    weight: float
    business_value: float
    shape: str
    family: str
    colours: tuple[str, ...]
    nouns: tuple[str, ...]
    attributes: tuple[str, ...]
    specs: tuple[str, ...] = ()
    base_price: float = 30.0
    audiences: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The path joined with ``" > "``, as in label vocabularies and ``business_value.csv``."""
        return SEPARATOR.join(self.path)


_FABRIC = ("Black", "White", "Navy Blue", "Blue", "Red", "Maroon", "Green", "Olive", "Grey",
           "Beige", "Yellow", "Pink", "Purple", "Teal", "Orange", "Mustard")
_DENIM = ("Blue", "Navy Blue", "Light Blue", "Black", "Charcoal", "Grey")
_LEATHER = ("Black", "Brown", "Tan", "Maroon", "Beige")
_SHOE = ("White", "Black", "Grey", "Navy Blue", "Red", "Blue", "Green", "Orange")
_DEVICE = ("Black", "Silver", "Grey", "Blue", "White", "Gold", "Charcoal")
_METAL = ("Silver", "Gold", "Rose Gold", "Black", "Copper")
_KITCHEN = ("Red", "Black", "Teal", "Cream", "Orange", "Grey", "Copper", "Green")
_WOOD = ("Brown", "Tan", "Beige", "Black", "White", "Grey")
_PLAY = ("Red", "Blue", "Orange", "Green", "Yellow", "Black", "White")

LEAVES: tuple[Leaf, ...] = (
    # Apparel
    Leaf(("Apparel", "Topwear", "Shirts"), 11, 1.0, "shirt", "apparel", _FABRIC,
         ("Casual Shirt", "Formal Shirt", "Oxford Shirt"), ("Slim Fit", "Regular Fit", "Cotton", "Linen Blend"),
         base_price=29, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Topwear", "T-Shirts"), 14, 0.6, "tshirt", "apparel", _FABRIC,
         ("T-Shirt", "Crew Neck T-Shirt", "Graphic Tee"), ("Round Neck", "Pure Cotton", "Oversized", "Slim Fit"),
         base_price=15, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Topwear", "Sweaters"), 5, 1.1, "sweater", "apparel", _FABRIC,
         ("Sweater", "Pullover", "Cardigan"), ("Wool Blend", "Cable Knit", "Ribbed", "Acrylic"),
         base_price=39, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Bottomwear", "Jeans"), 9, 1.2, "jeans", "apparel", _DENIM,
         ("Jeans", "Denim Jeans", "Skinny Jeans"), ("Mid-Rise", "Stretchable", "Straight Fit", "Distressed"),
         base_price=45, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Bottomwear", "Shorts"), 4, 0.7, "shorts", "apparel", _FABRIC,
         ("Shorts", "Chino Shorts", "Sports Shorts"), ("Regular Fit", "Cotton", "Quick Dry", "Drawstring"),
         base_price=19, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Dresses", "Maxi Dresses"), 4, 1.3, "dress", "apparel", _FABRIC,
         ("Maxi Dress", "Fit and Flare Dress", "A-Line Dress"), ("Sleeveless", "Floral", "Georgette", "Tiered"),
         base_price=49, audiences=("Women", "Girls")),
    # Footwear
    Leaf(("Footwear", "Shoes", "Sneakers"), 8, 1.4, "sneaker", "footwear", _SHOE,
         ("Sneakers", "Running Shoes", "Trainers"), ("Lace-Up", "Mesh", "Lightweight", "Cushioned"),
         base_price=65, audiences=AUDIENCE_ALL),
    Leaf(("Footwear", "Shoes", "Formal Shoes"), 3, 1.5, "formal_shoe", "footwear", _LEATHER,
         ("Formal Shoes", "Derby Shoes", "Oxford Shoes"), ("Genuine Leather", "Patent", "Slip-On", "Brogue"),
         base_price=80, audiences=("Men", "Women")),
    Leaf(("Footwear", "Sandals", "Flip Flops"), 3, 0.4, "flip_flop", "footwear", _SHOE,
         ("Flip Flops", "Slides", "Thong Sandals"), ("Rubber", "Anti-Skid", "Soft Footbed", "Waterproof"),
         base_price=12, audiences=AUDIENCE_ALL),
    # Accessories
    Leaf(("Accessories", "Bags", "Handbags"), 5, 1.6, "handbag", "accessories", _LEATHER + ("Red", "Pink", "Cream"),
         ("Handbag", "Tote Bag", "Shoulder Bag"), ("Structured", "Faux Leather", "Quilted", "Textured"),
         base_price=55, audiences=("Women",)),
    Leaf(("Accessories", "Bags", "Backpacks"), 4, 1.2, "backpack", "accessories", ("Black", "Navy Blue", "Grey", "Olive", "Red", "Blue", "Teal"),
         ("Backpack", "Laptop Backpack", "Daypack"), ("Water Resistant", "25 L", "Padded", "Anti-Theft"),
         base_price=42, audiences=AUDIENCE_ALL),
    Leaf(("Accessories", "Watches", "Analog Watches"), 4, 2.0, "analog_watch", "accessories", _LEATHER + _METAL,
         ("Analog Watch", "Chronograph Watch", "Dress Watch"), ("Stainless Steel", "Leather Strap", "Water Resistant", "Minimalist"),
         base_price=90, audiences=AUDIENCE_ADULT),
    Leaf(("Accessories", "Watches", "Smart Watches"), 3, 2.2, "smart_watch", "accessories", ("Black", "Silver", "Pink", "Navy Blue", "Green"),
         ("Smart Watch", "Fitness Tracker Watch"), ("AMOLED", "Bluetooth Calling", "Heart Rate", "GPS"),
         base_price=120, audiences=AUDIENCE_ADULT),
    Leaf(("Accessories", "Eyewear", "Sunglasses"), 3, 1.1, "sunglasses", "accessories", ("Black", "Brown", "Gold", "Silver", "Blue"),
         ("Sunglasses", "Aviator Sunglasses", "Wayfarer Sunglasses"), ("UV Protected", "Polarised", "Gradient Lens", "Mirrored"),
         base_price=35, audiences=AUDIENCE_ADULT),
    Leaf(("Accessories", "Headwear", "Caps"), 2, 0.5, "cap", "accessories", _PLAY + ("Navy Blue", "Olive"),
         ("Baseball Cap", "Snapback Cap", "Trucker Cap"), ("Adjustable", "Cotton", "Embroidered", "Curved Brim"),
         base_price=14, audiences=AUDIENCE_ALL),
    # Electronics
    Leaf(("Electronics", "Audio", "Headphones", "Over-Ear Headphones"), 4, 2.1, "headphones", "electronics", _DEVICE,
         ("Over-Ear Headphones", "Wireless Headphones"), ("Noise Cancelling", "Bluetooth 5.3", "Foldable", "Hi-Res Audio"),
         ("30h Battery", "40 mm Drivers", "50 mm Drivers"), base_price=110),
    Leaf(("Electronics", "Audio", "Headphones", "Earbuds"), 5, 1.8, "earbuds", "electronics", ("White", "Black", "Blue", "Green", "Pink"),
         ("True Wireless Earbuds", "In-Ear Earbuds"), ("ANC", "Bluetooth 5.3", "IPX5", "Low Latency"),
         ("24h Playback", "10 mm Drivers", "Dual Mic"), base_price=60),
    Leaf(("Electronics", "Audio", "Speakers"), 3, 1.7, "speaker", "electronics", _DEVICE + ("Red", "Teal"),
         ("Bluetooth Speaker", "Portable Speaker", "Bookshelf Speaker"), ("Waterproof", "Stereo", "Deep Bass", "Party"),
         ("20 W", "40 W", "10 W"), base_price=70),
    Leaf(("Electronics", "Phones", "Smartphones"), 7, 2.8, "smartphone", "electronics", _DEVICE + ("Green", "Purple"),
         ("Smartphone", "5G Smartphone"), ("AMOLED", "Dual SIM", "Triple Camera", "Fast Charging"),
         ("128 GB", "256 GB", "8 GB RAM 128 GB"), base_price=420),
    Leaf(("Electronics", "Computers", "Laptops"), 4, 3.0, "laptop", "electronics", ("Silver", "Grey", "Black", "Charcoal", "Blue"),
         ("Laptop", "Thin and Light Laptop", "Gaming Laptop"), ("Full HD", "Backlit Keyboard", "SSD", "Windows 11"),
         ('14-inch', '15.6-inch', '16 GB RAM 512 GB SSD'), base_price=850),
    Leaf(("Electronics", "Computers", "Monitors"), 3, 2.4, "monitor", "electronics", ("Black", "Silver", "White", "Charcoal"),
         ("Monitor", "LED Monitor", "Gaming Monitor"), ("Full HD", "IPS", "144 Hz", "Frameless"),
         ("24-inch", "27-inch", "32-inch"), base_price=230),
    Leaf(("Electronics", "Cameras", "Digital Cameras"), 2, 2.6, "camera", "electronics", ("Black", "Silver", "Charcoal", "Red"),
         ("Mirrorless Camera", "Digital Camera", "Compact Camera"), ("4K Video", "24 MP", "Optical Zoom", "Image Stabilised"),
         ("with 18-55 mm Lens", "Body Only", "20x Zoom"), base_price=640),
    Leaf(("Electronics", "TV", "Televisions"), 3, 2.9, "television", "electronics", ("Black", "Silver", "Charcoal"),
         ("Smart TV", "LED TV", "QLED TV"), ("4K Ultra HD", "HDR10", "Dolby Audio", "Android TV"),
         ('43-inch', '55-inch', '65-inch'), base_price=560),
    # Home & Kitchen
    Leaf(("Home & Kitchen", "Kitchen", "Cookware", "Frying Pans"), 3, 0.9, "frying_pan", "home", _KITCHEN,
         ("Frying Pan", "Non-Stick Fry Pan", "Skillet"), ("Non-Stick", "Induction Base", "Granite Coated", "Cast Iron"),
         ("24 cm", "26 cm", "28 cm"), base_price=28),
    Leaf(("Home & Kitchen", "Kitchen", "Cookware", "Saucepans"), 2, 0.9, "saucepan", "home", _KITCHEN,
         ("Saucepan", "Sauce Pan with Lid", "Milk Pan"), ("Stainless Steel", "Induction Base", "Tri-Ply", "Non-Stick"),
         ("1.5 L", "2 L", "16 cm"), base_price=32),
    Leaf(("Home & Kitchen", "Kitchen", "Drinkware", "Mugs"), 5, 0.4, "mug", "home", _KITCHEN + ("White", "Yellow", "Blue"),
         ("Coffee Mug", "Ceramic Mug", "Tea Cup"), ("Ceramic", "Microwave Safe", "Printed", "Matte"),
         ("350 ml", "300 ml", "Set of 2"), base_price=9),
    Leaf(("Home & Kitchen", "Kitchen", "Drinkware", "Water Bottles"), 4, 0.5, "bottle", "home", _PLAY + ("Silver", "Teal", "Pink"),
         ("Water Bottle", "Insulated Bottle", "Sports Bottle"), ("Stainless Steel", "BPA Free", "Leak Proof", "Vacuum Insulated"),
         ("750 ml", "1 L", "500 ml"), base_price=18),
    Leaf(("Home & Kitchen", "Furniture", "Chairs"), 3, 1.9, "chair", "home", _WOOD + ("Red", "Teal"),
         ("Dining Chair", "Office Chair", "Accent Chair"), ("Solid Wood", "Ergonomic", "Upholstered", "Set of 2"),
         ("Armless", "with Armrest", "High Back"), base_price=110),
    Leaf(("Home & Kitchen", "Furniture", "Tables"), 2, 2.0, "table", "home", _WOOD,
         ("Coffee Table", "Study Table", "Side Table"), ("Solid Wood", "Engineered Wood", "Foldable", "Glass Top"),
         ("4 Seater", "Compact", "120 cm"), base_price=150),
    Leaf(("Home & Kitchen", "Lighting", "Table Lamps"), 2, 1.0, "lamp", "home", ("Cream", "White", "Beige", "Black", "Gold", "Teal"),
         ("Table Lamp", "Bedside Lamp", "Desk Lamp"), ("Fabric Shade", "Dimmable", "LED", "Ceramic Base"),
         ("E27", "40 cm", "Warm White"), base_price=38),
    Leaf(("Home & Kitchen", "Decor", "Wall Clocks"), 2, 0.8, "wall_clock", "home", ("White", "Black", "Brown", "Gold", "Silver", "Red"),
         ("Wall Clock", "Analog Wall Clock"), ("Silent Sweep", "Round", "Vintage", "Modern"),
         ("30 cm", "35 cm", "25 cm"), base_price=22),
    # Sports & Outdoors
    Leaf(("Sports & Outdoors", "Ball Sports", "Footballs"), 2, 0.7, "football", "sports", ("White", "Yellow", "Orange", "Blue", "Red"),
         ("Football", "Match Ball", "Training Ball"), ("Machine Stitched", "Hand Stitched", "All Weather", "PU"),
         ("Size 5", "Size 4", "Size 3"), base_price=24),
    Leaf(("Sports & Outdoors", "Ball Sports", "Basketballs"), 2, 0.7, "basketball", "sports", ("Orange", "Brown", "Red", "Black"),
         ("Basketball", "Indoor Basketball", "Outdoor Basketball"), ("Rubber", "Composite Leather", "Deep Channel", "Grip"),
         ("Size 7", "Size 6", "Size 5"), base_price=27),
    Leaf(("Sports & Outdoors", "Cycling", "Bicycles"), 2, 2.5, "bicycle", "sports", ("Red", "Blue", "Black", "Green", "Orange", "White"),
         ("Mountain Bike", "Road Bike", "City Bicycle"), ("21 Speed", "Disc Brakes", "Steel Frame", "Alloy Frame"),
         ('26 T', '27.5 T', '700C'), base_price=320),
    Leaf(("Sports & Outdoors", "Fitness", "Dumbbells"), 3, 0.9, "dumbbell", "sports", ("Black", "Grey", "Red", "Blue", "Green", "Yellow"),
         ("Dumbbells", "Hex Dumbbell", "Dumbbell Set"), ("Rubber Coated", "Cast Iron", "Neoprene", "Chrome Handle"),
         ("2 x 5 kg", "10 kg", "2 x 2.5 kg"), base_price=35),
)

#: Category paths that do not belong to the tree (planted as "unknown category").
UNKNOWN_PATHS: tuple[tuple[str, ...], ...] = (
    ("Miscellaneous",),
    ("Clearance", "Everything Must Go"),
    ("Uncategorised", "Imported", "Batch 7"),
)


def tree_depth() -> int:
    """The deepest level of the tree."""
    return max(len(leaf.path) for leaf in LEAVES)


def leaf_by_name(name: str) -> Leaf:
    """The leaf whose joined path is ``name``.

    Raises:
        KeyError: when no leaf has that path.
    """
    for leaf in LEAVES:
        if leaf.name == name:
            return leaf
    raise KeyError(name)

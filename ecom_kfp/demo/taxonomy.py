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
    Leaf(("Apparel", "Topwear", "Shirts"), weight=11, business_value=1.0, shape="shirt",
         family="apparel", colours=_FABRIC,
         nouns=("Casual Shirt", "Formal Shirt", "Oxford Shirt"),
         attributes=("Slim Fit", "Regular Fit", "Cotton", "Linen Blend"),
         base_price=29, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Topwear", "T-Shirts"), weight=14, business_value=0.6, shape="tshirt",
         family="apparel", colours=_FABRIC,
         nouns=("T-Shirt", "Crew Neck T-Shirt", "Graphic Tee"),
         attributes=("Round Neck", "Pure Cotton", "Oversized", "Slim Fit"),
         base_price=15, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Topwear", "Sweaters"), weight=5, business_value=1.1, shape="sweater",
         family="apparel", colours=_FABRIC,
         nouns=("Sweater", "Pullover", "Cardigan"),
         attributes=("Wool Blend", "Cable Knit", "Ribbed", "Acrylic"),
         base_price=39, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Bottomwear", "Jeans"), weight=9, business_value=1.2, shape="jeans",
         family="apparel", colours=_DENIM,
         nouns=("Jeans", "Denim Jeans", "Skinny Jeans"),
         attributes=("Mid-Rise", "Stretchable", "Straight Fit", "Distressed"),
         base_price=45, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Bottomwear", "Shorts"), weight=4, business_value=0.7, shape="shorts",
         family="apparel", colours=_FABRIC,
         nouns=("Shorts", "Chino Shorts", "Sports Shorts"),
         attributes=("Regular Fit", "Cotton", "Quick Dry", "Drawstring"),
         base_price=19, audiences=AUDIENCE_ALL),
    Leaf(("Apparel", "Dresses", "Maxi Dresses"), weight=4, business_value=1.3, shape="dress",
         family="apparel", colours=_FABRIC,
         nouns=("Maxi Dress", "Fit and Flare Dress", "A-Line Dress"),
         attributes=("Sleeveless", "Floral", "Georgette", "Tiered"),
         base_price=49, audiences=("Women", "Girls")),
    # Footwear
    Leaf(("Footwear", "Shoes", "Sneakers"), weight=8, business_value=1.4, shape="sneaker",
         family="footwear", colours=_SHOE,
         nouns=("Sneakers", "Running Shoes", "Trainers"),
         attributes=("Lace-Up", "Mesh", "Lightweight", "Cushioned"),
         base_price=65, audiences=AUDIENCE_ALL),
    Leaf(("Footwear", "Shoes", "Formal Shoes"), weight=3, business_value=1.5, shape="formal_shoe",
         family="footwear", colours=_LEATHER,
         nouns=("Formal Shoes", "Derby Shoes", "Oxford Shoes"),
         attributes=("Genuine Leather", "Patent", "Slip-On", "Brogue"),
         base_price=80, audiences=("Men", "Women")),
    Leaf(("Footwear", "Sandals", "Flip Flops"), weight=3, business_value=0.4, shape="flip_flop",
         family="footwear", colours=_SHOE,
         nouns=("Flip Flops", "Slides", "Thong Sandals"),
         attributes=("Rubber", "Anti-Skid", "Soft Footbed", "Waterproof"),
         base_price=12, audiences=AUDIENCE_ALL),
    # Accessories
    Leaf(("Accessories", "Bags", "Handbags"), weight=5, business_value=1.6, shape="handbag",
         family="accessories", colours=("Black", "Brown", "Tan", "Maroon", "Beige", "Red", "Pink", "Cream"),
         nouns=("Handbag", "Tote Bag", "Shoulder Bag"),
         attributes=("Structured", "Faux Leather", "Quilted", "Textured"),
         base_price=55, audiences=("Women",)),
    Leaf(("Accessories", "Bags", "Backpacks"), weight=4, business_value=1.2, shape="backpack",
         family="accessories", colours=("Black", "Navy Blue", "Grey", "Olive", "Red", "Blue", "Teal"),
         nouns=("Backpack", "Laptop Backpack", "Daypack"),
         attributes=("Water Resistant", "25 L", "Padded", "Anti-Theft"),
         base_price=42, audiences=AUDIENCE_ALL),
    Leaf(("Accessories", "Watches", "Analog Watches"), weight=4, business_value=2.0, shape="analog_watch",
         family="accessories",
         colours=_LEATHER + _METAL,
         nouns=("Analog Watch", "Chronograph Watch", "Dress Watch"),
         attributes=("Stainless Steel", "Leather Strap", "Water Resistant", "Minimalist"),
         base_price=90, audiences=AUDIENCE_ADULT),
    Leaf(("Accessories", "Watches", "Smart Watches"), weight=3, business_value=2.2, shape="smart_watch",
         family="accessories", colours=("Black", "Silver", "Pink", "Navy Blue", "Green"),
         nouns=("Smart Watch", "Fitness Tracker Watch"),
         attributes=("AMOLED", "Bluetooth Calling", "Heart Rate", "GPS"),
         base_price=120, audiences=AUDIENCE_ADULT),
    Leaf(("Accessories", "Eyewear", "Sunglasses"), weight=3, business_value=1.1, shape="sunglasses",
         family="accessories", colours=("Black", "Brown", "Gold", "Silver", "Blue"),
         nouns=("Sunglasses", "Aviator Sunglasses", "Wayfarer Sunglasses"),
         attributes=("UV Protected", "Polarised", "Gradient Lens", "Mirrored"),
         base_price=35, audiences=AUDIENCE_ADULT),
    Leaf(("Accessories", "Headwear", "Caps"), weight=2, business_value=0.5, shape="cap",
         family="accessories",
         colours=("Red", "Blue", "Orange", "Green", "Yellow", "Black", "White", "Navy Blue", "Olive"),
         nouns=("Baseball Cap", "Snapback Cap", "Trucker Cap"),
         attributes=("Adjustable", "Cotton", "Embroidered", "Curved Brim"),
         base_price=14, audiences=AUDIENCE_ALL),
    # Electronics
    Leaf(("Electronics", "Audio", "Headphones", "Over-Ear Headphones"),
         weight=4, business_value=2.1, shape="headphones",
         family="electronics", colours=_DEVICE,
         nouns=("Over-Ear Headphones", "Wireless Headphones"),
         attributes=("Noise Cancelling", "Bluetooth 5.3", "Foldable", "Hi-Res Audio"),
         specs=("30h Battery", "40 mm Drivers", "50 mm Drivers"), base_price=110),
    Leaf(("Electronics", "Audio", "Headphones", "Earbuds"), weight=5, business_value=1.8, shape="earbuds",
         family="electronics", colours=("White", "Black", "Blue", "Green", "Pink"),
         nouns=("True Wireless Earbuds", "In-Ear Earbuds"),
         attributes=("ANC", "Bluetooth 5.3", "IPX5", "Low Latency"),
         specs=("24h Playback", "10 mm Drivers", "Dual Mic"), base_price=60),
    Leaf(("Electronics", "Audio", "Speakers"), weight=3, business_value=1.7, shape="speaker",
         family="electronics",
         colours=("Black", "Silver", "Grey", "Blue", "White", "Gold", "Charcoal", "Red", "Teal"),
         nouns=("Bluetooth Speaker", "Portable Speaker", "Bookshelf Speaker"),
         attributes=("Waterproof", "Stereo", "Deep Bass", "Party"),
         specs=("20 W", "40 W", "10 W"), base_price=70),
    Leaf(("Electronics", "Phones", "Smartphones"), weight=7, business_value=2.8, shape="smartphone",
         family="electronics",
         colours=("Black", "Silver", "Grey", "Blue", "White", "Gold", "Charcoal", "Green", "Purple"),
         nouns=("Smartphone", "5G Smartphone"),
         attributes=("AMOLED", "Dual SIM", "Triple Camera", "Fast Charging"),
         specs=("128 GB", "256 GB", "8 GB RAM 128 GB"), base_price=420),
    Leaf(("Electronics", "Computers", "Laptops"), weight=4, business_value=3.0, shape="laptop",
         family="electronics", colours=("Silver", "Grey", "Black", "Charcoal", "Blue"),
         nouns=("Laptop", "Thin and Light Laptop", "Gaming Laptop"),
         attributes=("Full HD", "Backlit Keyboard", "SSD", "Windows 11"),
         specs=("14-inch", "15.6-inch", "16 GB RAM 512 GB SSD"), base_price=850),
    Leaf(("Electronics", "Computers", "Monitors"), weight=3, business_value=2.4, shape="monitor",
         family="electronics", colours=("Black", "Silver", "White", "Charcoal"),
         nouns=("Monitor", "LED Monitor", "Gaming Monitor"),
         attributes=("Full HD", "IPS", "144 Hz", "Frameless"),
         specs=("24-inch", "27-inch", "32-inch"), base_price=230),
    Leaf(("Electronics", "Cameras", "Digital Cameras"), weight=2, business_value=2.6, shape="camera",
         family="electronics", colours=("Black", "Silver", "Charcoal", "Red"),
         nouns=("Mirrorless Camera", "Digital Camera", "Compact Camera"),
         attributes=("4K Video", "24 MP", "Optical Zoom", "Image Stabilised"),
         specs=("with 18-55 mm Lens", "Body Only", "20x Zoom"), base_price=640),
    Leaf(("Electronics", "TV", "Televisions"), weight=3, business_value=2.9, shape="television",
         family="electronics", colours=("Black", "Silver", "Charcoal"),
         nouns=("Smart TV", "LED TV", "QLED TV"),
         attributes=("4K Ultra HD", "HDR10", "Dolby Audio", "Android TV"),
         specs=("43-inch", "55-inch", "65-inch"), base_price=560),
    # Home & Kitchen
    Leaf(("Home & Kitchen", "Kitchen", "Cookware", "Frying Pans"),
         weight=3, business_value=0.9, shape="frying_pan",
         family="home", colours=_KITCHEN,
         nouns=("Frying Pan", "Non-Stick Fry Pan", "Skillet"),
         attributes=("Non-Stick", "Induction Base", "Granite Coated", "Cast Iron"),
         specs=("24 cm", "26 cm", "28 cm"), base_price=28),
    Leaf(("Home & Kitchen", "Kitchen", "Cookware", "Saucepans"),
         weight=2, business_value=0.9, shape="saucepan",
         family="home", colours=_KITCHEN,
         nouns=("Saucepan", "Sauce Pan with Lid", "Milk Pan"),
         attributes=("Stainless Steel", "Induction Base", "Tri-Ply", "Non-Stick"),
         specs=("1.5 L", "2 L", "16 cm"), base_price=32),
    Leaf(("Home & Kitchen", "Kitchen", "Drinkware", "Mugs"), weight=5, business_value=0.4, shape="mug",
         family="home",
         colours=_KITCHEN + ("White", "Yellow", "Blue"),
         nouns=("Coffee Mug", "Ceramic Mug", "Tea Cup"),
         attributes=("Ceramic", "Microwave Safe", "Printed", "Matte"),
         specs=("350 ml", "300 ml", "Set of 2"), base_price=9),
    Leaf(("Home & Kitchen", "Kitchen", "Drinkware", "Water Bottles"),
         weight=4, business_value=0.5, shape="bottle",
         family="home",
         colours=("Red", "Blue", "Orange", "Green", "Yellow", "Black", "White", "Silver", "Teal", "Pink"),
         nouns=("Water Bottle", "Insulated Bottle", "Sports Bottle"),
         attributes=("Stainless Steel", "BPA Free", "Leak Proof", "Vacuum Insulated"),
         specs=("750 ml", "1 L", "500 ml"), base_price=18),
    Leaf(("Home & Kitchen", "Furniture", "Chairs"), weight=3, business_value=1.9, shape="chair",
         family="home", colours=("Brown", "Tan", "Beige", "Black", "White", "Grey", "Red", "Teal"),
         nouns=("Dining Chair", "Office Chair", "Accent Chair"),
         attributes=("Solid Wood", "Ergonomic", "Upholstered", "Set of 2"),
         specs=("Armless", "with Armrest", "High Back"), base_price=110),
    Leaf(("Home & Kitchen", "Furniture", "Tables"), weight=2, business_value=2.0, shape="table",
         family="home", colours=_WOOD,
         nouns=("Coffee Table", "Study Table", "Side Table"),
         attributes=("Solid Wood", "Engineered Wood", "Foldable", "Glass Top"),
         specs=("4 Seater", "Compact", "120 cm"), base_price=150),
    Leaf(("Home & Kitchen", "Lighting", "Table Lamps"), weight=2, business_value=1.0, shape="lamp",
         family="home", colours=("Cream", "White", "Beige", "Black", "Gold", "Teal"),
         nouns=("Table Lamp", "Bedside Lamp", "Desk Lamp"),
         attributes=("Fabric Shade", "Dimmable", "LED", "Ceramic Base"),
         specs=("E27", "40 cm", "Warm White"), base_price=38),
    Leaf(("Home & Kitchen", "Decor", "Wall Clocks"), weight=2, business_value=0.8, shape="wall_clock",
         family="home", colours=("White", "Black", "Brown", "Gold", "Silver", "Red"),
         nouns=("Wall Clock", "Analog Wall Clock"),
         attributes=("Silent Sweep", "Round", "Vintage", "Modern"),
         specs=("30 cm", "35 cm", "25 cm"), base_price=22),
    # Sports & Outdoors
    Leaf(("Sports & Outdoors", "Ball Sports", "Footballs"), weight=2, business_value=0.7, shape="football",
         family="sports", colours=("White", "Yellow", "Orange", "Blue", "Red"),
         nouns=("Football", "Match Ball", "Training Ball"),
         attributes=("Machine Stitched", "Hand Stitched", "All Weather", "PU"),
         specs=("Size 5", "Size 4", "Size 3"), base_price=24),
    Leaf(("Sports & Outdoors", "Ball Sports", "Basketballs"),
         weight=2, business_value=0.7, shape="basketball",
         family="sports", colours=("Orange", "Brown", "Red", "Black"),
         nouns=("Basketball", "Indoor Basketball", "Outdoor Basketball"),
         attributes=("Rubber", "Composite Leather", "Deep Channel", "Grip"),
         specs=("Size 7", "Size 6", "Size 5"), base_price=27),
    Leaf(("Sports & Outdoors", "Cycling", "Bicycles"), weight=2, business_value=2.5, shape="bicycle",
         family="sports", colours=("Red", "Blue", "Black", "Green", "Orange", "White"),
         nouns=("Mountain Bike", "Road Bike", "City Bicycle"),
         attributes=("21 Speed", "Disc Brakes", "Steel Frame", "Alloy Frame"),
         specs=("26 T", "27.5 T", "700C"), base_price=320),
    Leaf(("Sports & Outdoors", "Fitness", "Dumbbells"), weight=3, business_value=0.9, shape="dumbbell",
         family="sports", colours=("Black", "Grey", "Red", "Blue", "Green", "Yellow"),
         nouns=("Dumbbells", "Hex Dumbbell", "Dumbbell Set"),
         attributes=("Rubber Coated", "Cast Iron", "Neoprene", "Chrome Handle"),
         specs=("2 x 5 kg", "10 kg", "2 x 2.5 kg"), base_price=35),
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


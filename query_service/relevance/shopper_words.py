"""Word lists of the shopper-phrased query generator (``shopper_queries``): data only.

These lists are the vocabulary held out from the query parser: ``shopper_queries``
splits every list in two by a seeded hash and builds the tune set from one half,
the test set from the other. Keep them here (not in the parser's synonym table) so
the parser can be tuned on the tune half without ever reading the test half.

Rules the lists follow (``tests/unit/test_shopper_queries.py`` checks them):

- no phrase is a catalog value or its other grammatical number (those are the
  shared, in-vocabulary forms both splits may use);
- no phrase appears in two lists (a phrase has one meaning and one half);
- type synonyms and fillers carry no colour or gender word, so a ``no_colour`` /
  ``no_gender`` query really names neither;
- a colour variant denotes exactly one catalog ``base_colour``: where the catalog has
  its own value (Charcoal, Maroon, Off White, Cream, Navy Blue...) the word for it
  maps there, never to the broader colour, because the grade rule is exact equality.
"""

from __future__ import annotations

#: Colloquial names of catalog article types. "kurti" is not here: it is the singular
#: of the catalog's own "Kurtis" (a plural inflection, not a synonym of Kurtas).
TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Tshirts": ("tee", "t shirt", "polo", "crew neck", "jersey"),
    "Shirts": ("button down", "oxford", "flannel", "collared shirt", "formal shirt"),
    "Casual Shoes": ("sneakers", "loafers", "canvas shoes", "kicks", "slip ons"),
    "Sports Shoes": ("trainers", "running shoes", "gym shoes", "runners", "athletic footwear"),
    "Watches": ("wrist watch", "timepiece", "chronograph", "analog watch"),
    "Kurtas": ("kurtha", "kameez", "ethnic kurta", "straight kurta"),
    "Tops": ("blouse", "tank top", "crop top", "peplum"),
    "Handbags": ("purse", "tote", "shoulder bag", "satchel", "hand bag"),
    "Heels": ("pumps", "stilettos", "wedges", "high heels", "platforms"),
    "Sunglasses": ("shades", "sunnies", "goggles", "aviators", "sun glasses"),
    "Wallets": ("billfold", "card holder", "bifold"),
    "Flip Flops": ("slippers", "thongs", "chappals", "slides"),
    "Sandals": ("gladiators", "kolhapuris", "open toe shoes"),
    "Briefs": ("underwear", "undies", "y-fronts"),
    "Belts": ("waist belt", "buckle belt", "cinch"),
    "Backpacks": ("school bag", "knapsack", "daypack", "college bag"),
    "Socks": ("footies", "no show socks", "ankle socks"),
    "Perfume and Body Mist": ("fragrance", "scent", "cologne", "eau de parfum", "edt"),
    "Formal Shoes": ("brogues", "derby shoes", "office shoes", "dress shoes", "lace ups"),
    "Jeans": ("denims", "skinnies", "bootcut"),
    "Shorts": ("half pants", "bermudas", "hot pants", "chino shorts"),
    "Trousers": ("pants", "slacks", "chinos", "pantaloons"),
    "Flats": ("ballerinas", "bellies", "mojaris", "juttis"),
    "Bra": ("brassiere", "bralette", "push up", "lingerie"),
    "Dresses": ("frock", "gown", "maxi", "sundress", "one piece"),
    "Sarees": ("sari", "banarasi", "six yards"),
    "Earrings": ("jhumkas", "hoops", "studs", "danglers", "ear rings"),
    "Deodorant": ("deo", "antiperspirant", "roll on"),
    "Nail Polish": ("nail paint", "nail varnish", "nail lacquer", "nail enamel"),
    "Lipstick": ("lippie", "lip colour", "lip crayon"),
    "Track Pants": ("joggers", "trackies", "sweatpants", "track bottoms"),
    "Clutches": ("evening bag", "envelope bag", "minaudiere"),
    "Caps": ("snapback", "baseball cap", "visor", "trucker"),
    "Ties": ("necktie", "cravat", "bow tie"),
    "Jackets": ("coat", "windcheater", "bomber", "parka", "puffer"),
    "Sweatshirts": ("hoodie", "sweat shirt", "fleece"),
    "Sweaters": ("jumper", "pullover", "cardigan", "knitwear", "woollen"),
    "Tunics": ("kaftan", "long top", "smock"),
    "Innerwear Vests": ("banian", "undershirt", "singlet"),
    "Kurtis": ("short kurta", "kurti top"),
    "Nightdress": ("nighty", "night gown", "sleep dress"),
    "Night suits": ("pyjama set", "sleepwear", "pjs"),
    "Leggings": ("yoga pants", "stretch pants"),
    "Capris": ("three fourths", "cropped pants", "pedal pushers", "calf length pants"),
    "Pendant": ("locket", "charm"),
    "Necklace and Chains": ("choker", "neckpiece"),
    "Skirts": ("mini skirt", "midi", "a-line", "pleated skirt"),
    "Scarves": ("bandana", "shawl", "neckerchief"),
    "Dupatta": ("chunni", "odhni"),
    "Ring": ("band", "solitaire", "signet"),
    "Bangle": ("kada", "kangan", "chudi"),
    "Bracelet": ("wristlet", "arm candy"),
    "Cufflinks": ("cuff links", "shirt links"),
    "Duffel Bag": ("gym bag", "travel bag", "duffle", "holdall"),
    "Laptop Bag": ("office bag", "briefcase", "computer bag"),
    "Messenger Bag": ("crossbody bag", "courier bag"),
    "Mobile Pouch": ("phone case", "mobile cover"),
    "Sports Sandals": ("floaters", "hiking sandals", "outdoor sandals"),
    "Kurta Sets": ("kurta pajama", "ethnic set"),
    "Lounge Pants": ("pyjamas", "pj bottoms", "sleep pants"),
    "Boxers": ("boxer shorts", "drawers"),
    "Trunk": ("boxer briefs", "hipsters"),
    "Tracksuits": ("jogging suit", "sweatsuit"),
    "Mufflers": ("neck warmer", "comforter"),
    "Kajal and Eyeliner": ("kohl", "eye pencil"),
    "Jewellery Set": ("jewelry set", "bridal set"),
    "Gloves": ("mittens", "gauntlets"),
    "Rain Jacket": ("raincoat", "poncho"),
    "Swimwear": ("swimsuit", "bathing suit", "swimming costume"),
    "Bath Robe": ("bathrobe", "dressing gown"),
    "Sunscreen": ("sunblock", "spf lotion"),
    "Suspenders": ("braces", "galluses"),
    "Blazers": ("sport coat", "suit jacket"),
}

#: The shared (catalog-vocabulary) surface of a type where its lower-cased catalog name is
#: not what anyone types: (base form, other number or None).
BASE_FORMS: dict[str, tuple[str, str | None]] = {
    "Innerwear Vests": ("vests", "vest"),
    "Necklace and Chains": ("necklaces", "necklace"),
    "Perfume and Body Mist": ("perfumes", "perfume"),
    "Kajal and Eyeliner": ("eyeliners", "eyeliner"),
    "Scarves": ("scarves", "scarf"),
    "Ties": ("ties", "tie"),
    "Swimwear": ("swimwear", None),
    "Jeans": ("jeans", None),
    "Shorts": ("shorts", None),
    "Briefs": ("briefs", None),
}

#: Words whose number is not flipped (pluralia tantum and slang plurals).
NO_FLIP: frozenset[str] = frozenset({
    "jeans", "shorts", "briefs", "slacks", "shades", "sunnies", "goggles", "tights", "undies", "y-fronts",
    "trackies", "footies", "skinnies", "pjs", "braces", "galluses", "drawers", "yards", "fourths", "swimwear",
    "sleepwear", "knitwear", "footwear", "bermudas", "pyjamas", "woollen", "maxi", "midi", "a-line", "edt",
    "fleece", "lingerie", "kicks", "hipsters", "bootcut", "on", "up", "ups", "ons", "candy",
})

#: The catalog value of each gender as every split may write it (shared vocabulary).
GENDER_BASE: dict[str, str] = {"Men": "men", "Women": "women", "Boys": "boys", "Girls": "girls",
                               "Unisex": "unisex"}

#: Shopper words for a gender. Phrases starting with "for " follow the product words.
GENDER_WORDS: dict[str, tuple[str, ...]] = {
    "Men": ("mens", "men's", "for him", "male", "gents", "guys", "for my husband", "for dad"),
    "Women": ("womens", "women's", "ladies", "for her", "female", "for my wife", "for mom", "ladies'"),
    "Boys": ("boys'", "boy's", "for my son", "kids boys", "little boys", "junior boys"),
    "Girls": ("girls'", "girl's", "for my daughter", "kids girl", "little girls", "teen girls"),
    "Unisex": ("for both", "gender neutral", "for men and women", "for everyone"),
}

#: Shopper words for a catalog colour; each denotes exactly that base_colour.
COLOUR_VARIANTS: dict[str, tuple[str, ...]] = {
    "Black": ("jet black", "blk", "ebony", "pitch black", "onyx", "raven"),
    "White": ("snow white", "pure white", "optic white", "bright white", "wht", "milky white"),
    "Blue": ("sky blue", "royal blue", "light blue", "cobalt", "azure", "cornflower"),
    "Navy Blue": ("navy", "dark blue", "midnight blue", "deep blue", "ink blue"),
    "Grey": ("gray", "slate", "ash grey", "smoke", "light gray", "stone grey"),
    "Charcoal": ("charcoal grey", "charcoal gray", "dark grey", "dark gray", "graphite", "gunmetal"),
    "Grey Melange": ("heather grey", "marl grey", "heathered", "grey heather"),
    "Red": ("crimson", "scarlet", "cherry red", "bright red", "ruby", "fire red"),
    "Maroon": ("wine", "dark red", "oxblood", "deep red", "claret"),
    "Burgundy": ("bordeaux", "merlot"),
    "Pink": ("baby pink", "hot pink", "blush", "pastel pink", "light pink", "bubblegum pink"),
    "Magenta": ("fuchsia", "deep pink"),
    "Purple": ("violet", "plum", "eggplant", "grape", "aubergine", "royal purple"),
    "Lavender": ("lilac", "light purple", "pastel purple"),
    "Green": ("emerald", "forest green", "bottle green", "kelly green", "dark green", "grass green"),
    "Olive": ("olive green", "army green", "military green", "moss green"),
    "Teal": ("peacock blue", "blue green", "petrol blue", "dark cyan"),
    "Turquoise Blue": ("turquoise", "aqua"),
    "Yellow": ("lemon yellow", "canary", "sunflower", "butter yellow"),
    "Orange": ("tangerine", "neon orange", "bright orange", "pumpkin"),
    "Brown": ("chocolate", "dark brown", "chestnut", "cognac", "walnut", "hazel"),
    "Tan": ("camel", "caramel", "light brown"),
    "Beige": ("sand", "oatmeal", "biscuit", "fawn"),
    "Cream": ("ivory", "vanilla", "cream-coloured"),
    "Off White": ("off-white", "offwhite", "eggshell", "ecru"),
    "Silver": ("silver-tone", "chrome", "platinum", "silvery"),
    "Gold": ("golden", "gold-tone", "gilded"),
    "Steel": ("stainless", "brushed metal"),
    "Peach": ("apricot", "salmon", "coral"),
    "Multi": ("multicolour", "multicolor", "colourful", "rainbow"),
    "Mustard": ("ochre", "turmeric"),
    "Rust": ("burnt orange", "terracotta"),
    "Skin": ("flesh tone", "skin-coloured"),
    "Bronze": ("antique bronze", "bronzed"),
    "Copper": ("coppery", "copper-tone"),
}

#: Filler words, before the product words or after them.
FILLERS_BEFORE: tuple[str, ...] = (
    "cheap", "nice", "best", "buy", "latest", "stylish", "trendy", "new", "branded", "good", "comfortable",
    "cool", "affordable", "premium", "designer", "cute", "classy", "quality",
)
FILLERS_AFTER: tuple[str, ...] = (
    "online", "for office", "on sale", "under 1000", "with discount", "for party", "for summer",
    "for college", "for wedding", "near me", "free delivery", "lowest price", "offer", "for daily use",
)

#: Common real misspellings of a word (keyed by the correctly spelled token).
MISSPELLINGS: dict[str, tuple[str, ...]] = {
    "jeans": ("jeens", "jenas", "jeanz"),
    "tshirts": ("tshrit", "tshirst", "tshrts"),
    "tshirt": ("tshert", "tshrt", "tshitr"),
    "sneakers": ("sneekers", "snekers", "sneakrs"),
    "trousers": ("trousres", "trowsers", "trouses"),
    "sandals": ("sandles", "sandels", "sandalls"),
    "sunglasses": ("sunglases", "sunglsses", "sunglassess"),
    "watches": ("wacthes", "watchs", "wtaches"),
    "watch": ("wacth", "wtach"),
    "wallet": ("walet", "wallett"),
    "wallets": ("walets", "wallts"),
    "kurta": ("kurtaa", "kutra"),
    "jacket": ("jaket", "jackit"),
    "jackets": ("jakets", "jackits"),
    "sweater": ("sweter", "swetar"),
    "shirt": ("shrit", "shirtt"),
    "shirts": ("shrits", "shirst"),
    "heels": ("heals", "heeels"),
    "dress": ("dres", "drees"),
    "dresses": ("dreses", "dressses"),
    "purse": ("purce", "pruse"),
    "backpack": ("bagpack", "backpak"),
    "backpacks": ("bagpacks", "backpaks"),
    "shoes": ("shoos", "shoess"),
    "saree": ("sare", "sarree"),
    "leggings": ("legins", "leggins", "legings"),
    "perfume": ("perfum", "parfume"),
    "lipstick": ("lipstik", "lipstic"),
    "handbags": ("handbgs", "hanbags"),
    "black": ("blak", "balck"),
    "grey": ("gery", "grye"),
    "purple": ("purpel", "puple"),
    "maroon": ("moroon", "maroom"),
    "beige": ("biege", "beig"),
    "yellow": ("yelow", "yello"),
    "brown": ("broun", "bronw"),
}

#: Composed queries (photo + words): how a shopper asks for another colour ...
MODIFIER_COLOUR: tuple[str, ...] = (
    "in {colour}", "but in {colour}", "same in {colour}", "this in {colour}", "{colour} one",
    "want it in {colour}", "similar in {colour}", "like this but {colour}", "do you have this in {colour}",
    "{colour} version", "show me {colour}", "any {colour} ones", "need {colour}", "get it in {colour}",
    "same style {colour}", "{colour} instead",
)
#: ... or for another shopper ({gender} is a "for ..."/"in ..." phrase).
MODIFIER_GENDER: tuple[str, ...] = (
    "{gender}", "same {gender}", "but {gender}", "this {gender}", "similar one {gender}", "want it {gender}",
    "same style {gender}", "one like this {gender}", "is there one {gender}", "{gender} please",
)

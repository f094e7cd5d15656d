# The demo's base mix: what its tiny base model (playing Llama 3) is pre-trained on, the CLDR corpus's high
# tier: the six base languages' monolingual text and their bitext with English (Llama 3's web data holds
# translations too). Also the demo's tiers, which config/mix_demo_bi.py and mix_demo_mono.py use.
#   python mix.py data/demo --config config/mix_demo_base.py --out data/demo/mix_base.json
from cldr_corpus import BASE_LANGUAGES as _BASE

# Tier thresholds (minimum eng-X bitext words, both sides), OUR CHOICE for the demo: the CLDR corpus spans
# ~3 decades of volume (25 to 36,000 words a pair), the paper's tiers 4 (1M to 10B words), so the paper's
# boundaries are compressed into the corpus's range, in their order: the base languages (36,000 words) are
# the high tier, every other tier gets languages, and low to medium_high have FLORES-style files.
tier_thresholds = {"very_high": 300_000, "high": 30_000, "medium_high": 7_000, "medium": 2_500,
                   "medium_low": 700, "low": 150, "very_low": 0}
tier_rates = dict.fromkeys(tier_thresholds, 0.0)  # only the sources named below
kinds = ["bi", "mono"]
source_rates = {code: 1.0 for code in _BASE}  # monolingual
source_rates |= {f"eng_Latn-{code}": 1.0 for code in _BASE if code != "eng_Latn"}  # bitext with English
total_tokens = 4_500_000  # about what config/demo_base.py trains on (the table's epochs); --total-tokens

# Mix 1 ("Bi") for the embedded CLDR demo corpus (prepare_mala.py --demo): the paper's recipe with its
# tier thresholds divided by 1,000,000 (a million words in the paper = one word here). The paper's
# sources hold ~1e5 to ~1e11 words; a CLDR source holds ~10 (e.g. sid_Latn) to ~3,200 (eng_Latn-ibo_Latn),
# so the paper's 1M / 10M / 100M / 500M / 1B / 10B boundaries become 1 / 10 / 100 / 500 / 1k / 10k words.
# The CLDR range (2.5 decades) is narrower than the paper's (6), so not every tier is populated: of the
# 667 sources of prepare_mala.py --demo, 313 are high, 119 medium_high, 121 medium, 105 medium_low, 7 low
# and 2 (empty) very_low; none is very_high (mix.py prints the table). Scaling by one factor keeps the
# paper's ratios between the boundaries.
# Rates, kinds and shares: the paper's Mix 1 (the demo has only bi and mono: mix.py renormalises their
# shares to 55% / 45%).
from config.mix_bi import *  # noqa: F403

tier_thresholds = {"very_high": 10_000, "high": 1_000, "medium_high": 500, "medium": 100, "medium_low": 10,
                   "low": 1, "very_low": 0}

# Only for the table's expected tokens / epochs: about what config/demo_bi.py trains on
# (steps x batch x block); mix.py --total-tokens N overrides it.
total_tokens = 2_000_000

# Mix 1 ("Bi") for the embedded CLDR demo corpus (prepare_mala.py --demo): the paper's recipe with its
# tier thresholds divided by 1,000,000 (a million words in the paper = one word here). The paper's
# sources hold ~1e5 to ~1e11 words; a CLDR source holds ~10 (e.g. sid_Latn) to ~3,200 (eng_Latn-ibo_Latn),
# so the paper's 1M / 10M / 100M / 500M / 1B / 10B boundaries become 1 / 10 / 100 / 500 / 1k / 10k words.
# The CLDR range (2.5 decades) is narrower than the paper's (6), so not every tier is populated: of the
# 667 sources of prepare_mala.py --demo, 313 are high, 119 medium_high, 121 medium, 105 medium_low, 7 low
# and 2 (empty) very_low; none is very_high (mix.py prints the table). Scaling by one factor keeps the
# paper's ratios between the boundaries.
tier_thresholds = {"very_high": 10_000, "high": 1_000, "medium_high": 500, "medium": 100, "medium_low": 10,
                   "low": 1, "very_low": 0}

# Same rates as config/mix_bi.py: OUR RECONSTRUCTION of the paper's Table 10 (low tiers 20x-50x).
tier_rates = {"very_high": 1.0, "high": 1.0, "medium_high": 2.0, "medium": 5.0, "medium_low": 10.0,
              "low": 20.0, "very_low": 50.0}

kinds = ["bi", "mono", "code", "papers", "instructions", "books"]

# The paper's Mix 1 shares; the demo has only bi and mono, so mix.py renormalises them to 55% / 45%.
kind_shares = {"bi": 0.323, "mono": 0.263, "code": 0.150, "papers": 0.132, "instructions": 0.114,
               "books": 0.018}

source_rates = {}

# Only for the table's expected tokens / epochs: about what config/demo_bi.py trains on
# (steps x batch x block); mix.py --total-tokens N overrides it.
total_tokens = 2_000_000

max_epochs_warn = 16  # Muennighoff et al. 2023

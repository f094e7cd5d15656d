# Pre-training data of the demo's tiny base model (trained from scratch): the high-resource part of the
# CLDR demo corpus only, standing in for what Llama 3 saw before continual pre-training. Only the top
# tiers have a nonzero rate, so the base model knows only the bigger half of the languages and the CPT
# mixes (config/mix_demo_bi.py, config/mix_demo_mono.py) have lower-resource languages to teach it.
# Tier thresholds: the paper's divided by 1,000,000 (see config/mix_demo_bi.py).
tier_thresholds = {"very_high": 10_000, "high": 1_000, "medium_high": 500, "medium": 100, "medium_low": 10,
                   "low": 1, "very_low": 0}

# very_high + high: the sources with >= 1,000 words, the bigger half of the CLDR locales (most tokens).
tier_rates = {"very_high": 1.0, "high": 1.0, "medium_high": 0.0, "medium": 0.0, "medium_low": 0.0,
              "low": 0.0, "very_low": 0.0}

# Both kinds, in their natural proportion (no kind_shares): web-scale pre-training data holds some
# incidental parallel text, which is why Llama 3 translates high-resource pairs a little before CPT.
kinds = ["bi", "mono"]

source_rates = {}

total_tokens = 2_000_000  # about what config/demo_base.py trains on; mix.py --total-tokens overrides

max_epochs_warn = 16  # Muennighoff et al. 2023

# Mix 2 ("Mono") for the embedded CLDR demo corpus: config/mix_demo_bi.py without bilingual data.
# Tier thresholds: the paper's divided by 1,000,000 (see config/mix_demo_bi.py for why).
tier_thresholds = {"very_high": 10_000, "high": 1_000, "medium_high": 500, "medium": 100, "medium_low": 10,
                   "low": 1, "very_low": 0}

# OUR RECONSTRUCTION of the paper's Table 10 (low tiers 20x-50x), as in config/mix_bi.py.
tier_rates = {"very_high": 1.0, "high": 1.0, "medium_high": 2.0, "medium": 5.0, "medium_low": 10.0,
              "low": 20.0, "very_low": 50.0}

kinds = ["mono", "code", "papers", "instructions", "books"]

# The paper's Mix 2 shares; the demo has only mono, so it gets 100%.
kind_shares = {"mono": 0.389, "code": 0.221, "papers": 0.195, "instructions": 0.168, "books": 0.026}

source_rates = {}

total_tokens = 2_000_000  # about what config/demo_mono.py trains on; mix.py --total-tokens overrides

max_epochs_warn = 16  # Muennighoff et al. 2023

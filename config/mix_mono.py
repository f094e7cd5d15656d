# Mix 2 ("Mono") of EMMA-500 Llama 3 (arXiv 2506.00469): Mix 1 without the bilingual data, 419B tokens
# (25k steps x ~16.8M tokens). Same tiers and rates as config/mix_bi.py (kept as a self-contained copy
# so each config reads on its own).

# The paper's resource categories by whitespace-word count (minimum per tier).
tier_thresholds = {"very_high": 10_000_000_000, "high": 1_000_000_000, "medium_high": 500_000_000,
                   "medium": 100_000_000, "medium_low": 10_000_000, "low": 1_000_000, "very_low": 0}

# OUR RECONSTRUCTION of the paper's Table 10 (low tiers oversampled 20x-50x relative to high): see
# config/mix_bi.py.
tier_rates = {"very_high": 1.0, "high": 1.0, "medium_high": 2.0, "medium": 5.0, "medium_low": 10.0,
              "low": 20.0, "very_low": 50.0}

kinds = ["mono", "code", "papers", "instructions", "books"]

# The paper's Mix 2 column: Mix 1's shares renormalised without bilingual data (26.3 / 67.7 = 38.9%, ...).
kind_shares = {"mono": 0.389, "code": 0.221, "papers": 0.195, "instructions": 0.168, "books": 0.026}

source_rates = {}

total_tokens = 419_000_000_000

max_epochs_warn = 16  # Muennighoff et al. 2023

# Mix 1 ("Bi") of EMMA-500 Llama 3 (arXiv 2506.00469): bilingual + monolingual + code + papers +
# instructions + books, 671B tokens (40k steps x ~16.8M tokens). Used as: python mix.py DATA... --config
# config/mix_bi.py --out mix_bi.json. Kinds absent from the data dirs are dropped and the kind shares
# renormalised over the rest (mix.py prints a note).

# The paper's resource categories by whitespace-word count (minimum per tier; reproduces its table).
tier_thresholds = {"very_high": 10_000_000_000, "high": 1_000_000_000, "medium_high": 500_000_000,
                   "medium": 100_000_000, "medium_low": 10_000_000, "low": 1_000_000, "very_low": 0}

# Sampling rate per tier (relative oversampling of a token): OUR RECONSTRUCTION of the paper's Table 10,
# whose values are not available to us. The paper states that low-resource data is oversampled roughly
# 20x-50x relative to high-resource data; we interpolate geometrically in between.
tier_rates = {"very_high": 1.0, "high": 1.0, "medium_high": 2.0, "medium": 5.0, "medium_low": 10.0,
              "low": 20.0, "very_low": 50.0}

kinds = ["bi", "mono", "code", "papers", "instructions", "books"]

# Share of tokens per data type, the paper's Mix 1 column.
kind_shares = {"bi": 0.323, "mono": 0.263, "code": 0.150, "papers": 0.132, "instructions": 0.114,
               "books": 0.018}

source_rates = {}  # per-source overrides of the tier rate, e.g. {"eng_Latn-fra_Latn": 0.5}

total_tokens = 671_000_000_000

# Returns of repeated data vanish beyond ~16 epochs (Muennighoff et al. 2023).
max_epochs_warn = 16

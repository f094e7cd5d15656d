# Pre-training data of the demo's tiny base model (trained from scratch): the part of the CLDR demo corpus
# in six big languages only, standing in for what Llama 3 saw before continual pre-training (a model that
# knows a few high-resource languages well, and how a translation pair looks between them). The CPT mixes
# (config/mix_demo_bi.py, config/mix_demo_mono.py) then have ~320 languages to teach it, with or without
# bitext: the paper's experiment in miniature.
_BASE_LANGUAGES = [  # a leading underscore: a helper name, not a mix key
    "eng_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "arb_Arab"]

# Tier thresholds: the paper's divided by 1,000,000 (see config/mix_demo_bi.py). Every tier rate is 0:
# only the sources named in source_rates below are sampled.
tier_thresholds = {"very_high": 10_000, "high": 1_000, "medium_high": 500, "medium": 100, "medium_low": 10,
                   "low": 1, "very_low": 0}
tier_rates = {"very_high": 0.0, "high": 0.0, "medium_high": 0.0, "medium": 0.0, "medium_low": 0.0,
              "low": 0.0, "very_low": 0.0}

kinds = ["bi", "mono"]

# Monolingual text of the six languages, and every pair among them (the corpus pairs English with each
# and the five others with each other, one direction per pair as MaLA publishes them).
source_rates = {lang: 1.0 for lang in _BASE_LANGUAGES}
source_rates |= {f"{a}-{b}": 1.0 for i, a in enumerate(_BASE_LANGUAGES) for b in _BASE_LANGUAGES[i + 1:]}

total_tokens = 2_000_000  # about what config/demo_base.py trains on; mix.py --total-tokens overrides

max_epochs_warn = 16  # Muennighoff et al. 2023

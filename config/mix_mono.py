# Mix 2 ("Mono") of EMMA-500 Llama 3 (arXiv 2506.00469): Mix 1 without the bilingual data, 419B tokens
# (25k steps x ~16.8M tokens). Same tiers and rates as config/mix_bi.py.
from config.mix_bi import *  # noqa: F403

kinds = ["mono", "code", "papers", "instructions", "books"]

# The paper's Mix 2 column: Mix 1's shares renormalised without bilingual data (26.3 / 67.7 = 38.9%, ...).
kind_shares = {"mono": 0.389, "code": 0.221, "papers": 0.195, "instructions": 0.168, "books": 0.026}

total_tokens = 419_000_000_000

# Mix 2 ("Mono") for the demo's CLDR corpus: config/mix_demo_bi.py without the bilingual data (the same
# replay of the base model's data, bitext included).
from config.mix_demo_bi import *  # noqa: F403
from config.mix_mono import kind_shares, kinds  # noqa: F401  (the paper's Mix 2 column)

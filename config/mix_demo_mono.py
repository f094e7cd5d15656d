# Mix 2 ("Mono") for the embedded CLDR demo corpus: config/mix_demo_bi.py without bilingual data.
from config.mix_demo_bi import *  # noqa: F403
from config.mix_mono import kind_shares, kinds  # noqa: F401  (the paper's Mix 2 column)

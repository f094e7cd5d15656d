# Mix 1 ("Bi") for the demo's CLDR corpus: continued pre-training of the base model on every language,
# with bitext. The paper's rates and shares (config/mix_bi.py; the demo has only bi and mono, so mix.py
# renormalises their shares to 55% / 45%), the demo's tiers, and a replay of the base model's own data.
#   python mix.py data/demo --config config/mix_demo_bi.py --out data/demo/mix_bi.json
from config.mix_bi import *  # noqa: F403
from config.mix_demo_base import source_rates as _base_sources
from config.mix_demo_base import tier_thresholds  # noqa: F401

source_rates = {}
# OUR REMEDY for forgetting, the same in Mix 1 and Mix 2: 20% of the tokens replay the base model's own
# data (its languages' mono and bitext), on top of the mix's own share of them. Without it a ~1M-parameter
# model forgets how a translation prompt works when CPT shows it no bitext at all (Mono), and the comparison
# would measure that collapse; with it, Mix 1 is Mix 2 plus the bitext of every tier, as in the paper.
replay_sources = sorted(_base_sources)
replay_share = 0.2
total_tokens = 1_500_000  # about what config/demo_bi.py trains on (the table's epochs)

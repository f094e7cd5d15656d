# The paper's "Mono" run in miniature: continual pre-training of the demo base model on Mix 2 of the CLDR
# corpus (Mix 1 without the bilingual pseudo-documents), on 2 CPU cores: the control for demo_bi.py,
# with every other setting the same.
#   python train.py config/demo_base.py && python train.py config/demo_mono.py
from config.demo_bi import *  # noqa: F403

mix = "data/demo/mix_mono.json"
out_dir = "out/demo_mono"

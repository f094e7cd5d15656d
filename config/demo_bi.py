# The paper's "Bi" run in miniature: continual pre-training of the demo base model on Mix 1 of the CLDR
# corpus (bilingual pseudo-documents + monolingual text, low tiers oversampled), on 2 CPU cores.
#   python train.py config/demo_base.py && python train.py config/demo_bi.py
from config.demo_base import *  # noqa: F403  (batch, schedule length, eval, checkpoints, device)

init = "out/demo_base/hf"  # the base model's Hugging Face export, as the paper starts from Llama 3's
mix = "data/demo/mix_bi.json"
out_dir = "out/demo_bi"

# 500 steps x 16 x 256 = 2M tokens, ~4 minutes on 2 cores (the demo's budget: 15 minutes for all of it).
# 200 steps at lr 3e-4 barely moved the base (Bi wrote one word, 'iria', for every eng->X prompt);
# 500 at 1e-3: Bi answers in the target language and script; chrF++ Bi - Mono over CPT seeds 0, 1, 2:
# eng->X +1.6 / +2.6 / +1.7, X->eng +1.4 / +1.0 / +0.3 (no copying yet: copying the source scores ~20).
max_steps = 500
lr = 1e-3  # CPT: half the base's 2e-3, as the paper's 1e-4 is lower than Llama 3's 3e-4
min_lr = 1e-4  # cosine to 10% of peak, as config/bi.py

# The paper's "Bi" run in miniature: continued pre-training of the demo's base model on Mix 1 of the CLDR
# corpus (every language's bitext with English and mono text, low tiers oversampled, 20% replay of the
# base's data), on one CPU core (demo.py runs Bi and Mono side by side).
#   python train.py config/demo_base.py && python train.py config/demo_bi.py
from config.demo_base import *  # noqa: F403  (batch, block, eval, checkpoints, device, dtype)

init = "out/demo_base/hf"  # the base model's Hugging Face export, as the paper starts from Llama 3's
mix = "data/demo/mix_bi.json"
out_dir = "out/demo_bi"

max_steps = 500  # x 4,096 tokens = 2.0M tokens (see the README)
lr = 1e-3  # CPT: half the base's peak, as the paper's 1e-4 is a third of Llama 3's 3e-4
min_lr = 1e-4
warmup_steps = 20
eval_interval = 125
ckpt_interval = 250

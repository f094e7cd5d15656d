# EMMA-500 Llama 3 8B "Mono": continual pre-training of Llama 3 8B on Mix 2 (Mix 1 without bitext).
#   torchrun --nproc_per_node=8 train.py config/mono.py
# Everything as config/bi.py (the paper trains both alike) except the mix and the budget:
# 25k steps of ~16.8M tokens = 419B tokens (docs/method.md).
from config.bi import *  # noqa: F403

mix = "data/mala/mix_mono.json"  # python mix.py data/mala --config config/mix_mono.py --out <this>
out_dir = "out/emma_llama3_8b_mono"
max_steps = 25_000  # x 16.8M tokens = 419B tokens (the paper's Mono budget); same warmup as Bi

# EMMA-500 Llama 3.1 8B "Bi": config/bi.py from Llama 3.1 8B instead of Llama 3 8B.
#   torchrun --nproc_per_node=8 train.py config/bi_llama31.py
# Llama 3.1 differs from Llama 3 only in its RoPE scaling (read from config.json) and its 128k
# max_position_embeddings; the CPT recipe is the same (the paper trains both alike).
from config.bi import *  # noqa: F403

init = "weights/Meta-Llama-3.1-8B"  # a Hugging Face folder (config.json + *.safetensors); set your path
out_dir = "out/emma_llama31_8b_bi"

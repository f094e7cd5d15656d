# EMMA-500 Llama 3.1 8B "Mono": config/mono.py from Llama 3.1 8B instead of Llama 3 8B.
#   torchrun --nproc_per_node=8 train.py config/mono_llama31.py
from config.mono import *  # noqa: F403

init = "weights/Meta-Llama-3.1-8B"  # a Hugging Face folder (config.json + *.safetensors); set your path
out_dir = "out/emma_llama31_8b_mono"

# EMMA-500 Llama 3 8B "Bi": continual pre-training of Llama 3 8B on Mix 1 (with bitext).
#   torchrun --nnodes=64 --nproc_per_node=8 ... train.py config/bi.py  (the paper's scale: 512 GPUs)
#   torchrun --nproc_per_node=8 train.py config/bi.py  (one node: same global batch)
# Facts from the paper (docs/method.md): 40k steps of ~16.8M tokens (= 671B tokens), context 8k, peak lr
# 1e-4 (Llama 3's own 3e-4 gave loss spikes). Warmup length, decay shape, betas, weight decay and clipping are
# not published: OUR RECONSTRUCTION (nanoGPT / torchtitan-like), see docs/method.md.
init = "weights/Meta-Llama-3-8B"  # a Hugging Face folder (config.json + *.safetensors); set your path
model = "llama3_8b"  # init's architecture: what --plan sizes when the weights are not on this machine
mix = "data/mala/mix_bi.json"  # python mix.py data/mala --config config/mix_bi.py --out data/mala/mix_bi.json
out_dir = "out/emma_llama3_8b_bi"

# 2048 sequences x 8192 tokens = 16,777,216 tokens per step, whatever the number of GPUs: train.py runs
# global_batch_size / (micro_batch_size x GPUs) micro-steps per step (512 GPUs: 4, one node of 8: 256).
block_size = 8192
global_batch_size = 2048
micro_batch_size = 1
# reduce-scatter after every micro-step: accumulating unsharded fp32 gradients would hold a full 8B copy
# (32 GB) on every GPU
grad_sync_per_micro_step = True

max_steps = 40_000  # x 16.8M tokens = 671B tokens (the paper's Bi budget)
lr = 1e-4
min_lr = 1e-5  # cosine to 10% of peak (reconstruction)
warmup_steps = 1000  # reconstruction: 2.5% of the run
weight_decay = 0.1
beta1, beta2 = 0.9, 0.95
grad_clip = 1.0

eval_interval = 500  # validation loss per resource tier and for English (forgetting)
eval_sequences = 64  # per group (tier, English), whatever the number of GPUs
ckpt_interval = 500  # ~ every 8.4B tokens; model + AdamW state ~ 100 GB per checkpoint
keep_ckpts = 3
export_dtype = "bfloat16"  # like Meta's released weights

dtype = "bfloat16"  # FSDP2 mixed precision: bf16 compute, fp32 master weights, fp32 gradient reduction
compile = True
activation_checkpointing = True  # 8k context at 8B: activations dominate GPU memory without it

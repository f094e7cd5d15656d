# The demo's base model: the "demo" preset (~7M parameters) pre-trained from scratch on the high-resource
# part of the embedded CLDR corpus (data/demo/mix_base.json), a few minutes on 2 CPU cores. It plays
# the part of Llama 3 8B: demo_bi.py and demo_mono.py continue from its export, out/demo_base/hf.
#   python train.py config/demo_base.py
init = "scratch"
model = "demo"
mix = "data/demo/mix_base.json"
out_dir = "out/demo_base"

block_size = 256
batch_size = 16
grad_accum = 1
max_steps = 250
lr = 1e-3  # a small model from scratch tolerates (and needs) a higher peak than CPT of 8B
min_lr = 1e-4
warmup_steps = 30
lr_decay_steps = 0

eval_interval = 50
eval_batches = 2
ckpt_interval = 100
keep_ckpts = 2

device = "cpu"
dtype = "float32"
compile = False
activation_checkpointing = False

# The demo's base model: the "demo" preset (~1.4M parameters) pre-trained from scratch on the base
# languages of the CLDR corpus (data/demo/mix_base.json: their mono text and their bitext with English).
# It plays Llama 3: demo_bi.py and demo_mono.py continue from its export, out/demo_base/hf.
#   python train.py config/demo_base.py
init = "scratch"
model = "demo"
mix = "data/demo/mix_base.json"
out_dir = "out/demo_base"

# a pseudo-document of 10 pairs is ~250 tokens: one window holds one
block_size = 256
global_batch_size = 16
micro_batch_size = 16
max_steps = 1250  # x 4,096 tokens = 5.1M tokens, ~4 epochs of the base data (see the README)
lr = 3e-3  # a ~1M-parameter model from scratch tolerates (and needs) a higher peak than CPT of 8B
min_lr = 3e-4
warmup_steps = 50
lr_decay_steps = 0

eval_interval = 250  # validation loss per tier and English (each pass costs a second or two)
eval_sequences = 32
ckpt_interval = 250
keep_ckpts = 1

device = "cpu"
dtype = "bfloat16"  # CPU matrix units (AMX, AVX512-BF16): ~1.2x fp32's tokens/s here (bench.py)
compile = True  # ~1.1x more once compiled (bench.py); the first run compiles for ~20 s
activation_checkpointing = False

# The demo's base model: the "demo" preset (0.8M parameters) pre-trained from scratch on the base
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
# x 4,096 tokens = 4.5M tokens, ~3 epochs of the base data. Translation emerges late and abruptly: on one
# seed, chrF++ on its languages (e->X / X->e) was ~20 / 22 after 2M tokens, 32 / 48 after 3M, 44 / 65 after
# 4.1M (a 1,000-step run); 10% more steps for margin
max_steps = 1100
lr = 3e-3  # a ~1M-parameter model from scratch tolerates (and needs) a higher peak than CPT of 8B
min_lr = 3e-4
warmup_steps = 50
lr_decay_steps = 0

eval_interval = 250  # validation loss per tier and English (each pass costs a second or two)
eval_sequences = 32
ckpt_interval = 250
keep_ckpts = 1

device = "cpu"
# fp32, eager: close numbers on every CPU (fp32 kernels still round a little differently). bf16 is ~1.3x
# faster on CPUs that multiply it natively (AMX, AVX512-BF16) but ~14x slower on those that do not (an AMD
# EPYC with AVX2: 540 vs 7,600 tok/s), and compile was slower there too (6,200); bench.py's train rows
# measure both on your machine
dtype = "float32"
compile = False
activation_checkpointing = False

# The demo's base model: the "demo" preset (~1.4M parameters) pre-trained from scratch on the high-resource
# part of the embedded CLDR corpus (data/demo/mix_base.json), a few minutes on 2 CPU cores. It plays
# the part of Llama 3 8B: demo_bi.py and demo_mono.py continue from its export, out/demo_base/hf.
#   python train.py config/demo_base.py
init = "scratch"
model = "demo"
mix = "data/demo/mix_base.json"
out_dir = "out/demo_base"

block_size = 256
global_batch_size = 16
micro_batch_size = 16
# 500 steps x 16 x 256 = 2M tokens (~7 epochs of the 300k-token base set), ~4 minutes at ~9k tok/s on 2
# cores: the three trainings must fit the demo's 15-minute budget. With 250 steps at dim 256 the CPT'd Bi
# model wrote one word ('iria') for every eng->X prompt; with this base it writes names in the target
# language and script (though it still does not copy names: see demo.py's report).
max_steps = 500
lr = 2e-3  # a ~1M-parameter model from scratch tolerates (and needs) a higher peak than CPT of 8B
min_lr = 2e-4
warmup_steps = 30
lr_decay_steps = 0

eval_interval = 250  # each eval pass costs seconds: start, middle, end
eval_sequences = 32
ckpt_interval = 100
keep_ckpts = 2

device = "cpu"
dtype = "float32"
compile = False
activation_checkpointing = False

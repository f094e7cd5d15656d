# The paper's "Mono" run in miniature: continual pre-training of the demo base model on Mix 2 of the CLDR
# corpus (Mix 1 without the bilingual pseudo-documents), on 2 CPU cores: the control for demo_bi.py.
#   python train.py config/demo_base.py && python train.py config/demo_mono.py
init = "out/demo_base/hf"  # the base model's Hugging Face export, as the paper starts from Llama 3's
mix = "data/demo/mix_mono.json"
out_dir = "out/demo_mono"

block_size = 256
batch_size = 16
grad_accum = 1
# 500 steps x 16 x 256 = 2M tokens, ~4 minutes on 2 cores (the demo's budget: 15 minutes for all of it).
# 200 steps at lr 3e-4 barely moved the base (Bi wrote one word, 'iria', for every eng->X prompt);
# 500 at 1e-3: Bi answers in the target language and script; chrF++ Bi - Mono over CPT seeds 0, 1, 2:
# eng->X +1.6 / +2.6 / +1.7, X->eng +1.4 / +1.0 / +0.3 (no copying yet: copying the source scores ~20).
max_steps = 500
lr = 1e-3  # CPT: half the base's 2e-3, as the paper's 1e-4 is lower than Llama 3's 3e-4
min_lr = 1e-4  # cosine to 10% of peak, as config/mono.py
warmup_steps = 30

eval_interval = 250  # validation loss per tier and English: does CPT forget the high-resource languages?
eval_batches = 2
ckpt_interval = 100
keep_ckpts = 2

device = "cpu"
dtype = "float32"
compile = False
activation_checkpointing = False

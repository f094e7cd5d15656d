# The paper's "Bi" run in miniature: continual pre-training of the demo base model on Mix 1 of the CLDR
# corpus (bilingual pseudo-documents + monolingual text, low tiers oversampled), on 2 CPU cores.
#   python train.py config/demo_base.py && python train.py config/demo_bi.py
init = "out/demo_base/hf"  # the base model's Hugging Face export, as the paper starts from Llama 3's
mix = "data/demo/mix_bi.json"
out_dir = "out/demo_bi"

block_size = 256
batch_size = 16
grad_accum = 1
max_steps = 200
lr = 3e-4  # CPT: lower than the base's 1e-3, as the paper's 1e-4 is lower than Llama 3's 3e-4
min_lr = 3e-5  # cosine to 10% of peak, as config/bi.py
warmup_steps = 30

eval_interval = 50  # validation loss per tier and English: does CPT forget the high-resource languages?
eval_batches = 2
ckpt_interval = 100
keep_ckpts = 2

device = "cpu"
dtype = "float32"
compile = False
activation_checkpointing = False

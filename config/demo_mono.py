# The paper's "Mono" run in miniature: config/demo_bi.py on Mix 2 (the same mix without the bitext of the
# new languages; the base's replay, its bitext included, is the same), every other setting the same.
from config.demo_bi import *  # noqa: F403

mix = "data/demo/mix_mono.json"
out_dir = "out/demo_mono"

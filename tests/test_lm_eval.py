"""evaluate.py's multiple-choice scores against lm-evaluation-harness 0.4 (`--model hf`, the test-only
oracle) on a folder exported by checkpoint.py: per-choice log-likelihoods within 1e-4 and identical acc,
acc_norm and acc_bytes, on a task with non-Latin choices and contexts that end in whitespace. The
exported folder is used as it is: lm-eval needs no extra file."""

import json

import pytest
from test_evaluate import tiny_model

import evaluate
import tasks
from checkpoint import save_hf
from tokenizer import Tokenizer, train_bpe

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is the test-only oracle (requirements-dev.txt)")

RECORDS = [  # contexts in several scripts, some ending in a space or a newline; choices in 8 scripts
    {"context": "Question: What is 2 + 2?\nAnswer:", "choices": ["4", "four", "vier", "четыре"],
     "label": 0},
    {"context": "Frage: Hauptstadt von Frankreich?\nAntwort: ", "choices": ["Paris", "Berlin", "Rom"],
     "label": 0},
    {"context": "问题：中国的首都是哪里？\n答案：", "choices": ["北京", "上海", "广州", "深圳"], "label": 0},
    {"context": "سؤال: ما هي عاصمة مصر؟\nالجواب:", "choices": ["القاهرة", "الإسكندرية"], "label": 0},
    {"context": "प्रश्न: भारत की राजधानी?\nउत्तर: ", "choices": ["नई दिल्ली", "मुंबई", "कोलकाता"], "label": 0},
    {"context": "質問：日本の首都は？\n答え：\n", "choices": ["東京", "大阪"], "label": 0},
    {"context": "Ερώτηση: πρωτεύουσα της Ελλάδας;\nΑπάντηση:", "choices": ["Αθήνα", "Θεσσαλονίκη"],
     "label": 0},
    {"context": "질문: 한국의 수도는?\n답: ", "choices": ["서울", "부산", "인천"], "label": 0},
    {"context": "Swali: mji mkuu wa Kenya?\nJibu:", "choices": ["Nairobi", "Mombasa"], "label": 0},
    {"context": "Вопрос: столица России?\nОтвет:  ", "choices": ["Москва", "Санкт-Петербург"], "label": 0},
    {"context": "Q: the longest word?\nA:", "choices": ["a", "extraordinarily", "cat"], "label": 1},
    {"context": "Choose: ", "choices": ["ก", "ข้าว", "ภาษาไทย"], "label": 2},
]
TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
  - metric: acc_bytes
"""


def record_item(record, lang, where):
    return tasks.MCItem(record["context"], record["choices"], record["label"])


@pytest.fixture(params=["trained BPE", "Llama 3"])
def exported(request, tmp_path):
    """A tiny random Llama exported as a complete Hugging Face folder (tokenizer.json included)."""
    if request.param == "Llama 3":
        tok_path = request.getfixturevalue("llama3_tokenizer_path")  # skips without Meta's tokenizer
    else:
        texts = [r["context"] + " " + " ".join(r["choices"]) for r in RECORDS] * 5
        tok_path = tmp_path / "bpe.model"
        train_bpe(texts, 400, tok_path)
    tok = Tokenizer(tok_path)
    save_hf(tiny_model(tok.n_vocab), tmp_path / "hf", tokenizer=tok_path)
    return tmp_path / "hf"


def test_choice_scores_equal_lm_eval(exported, tmp_path, monkeypatch):
    data = tmp_path / "data" / "deu_Latn.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy_mc.yaml").write_text(TASK_YAML.format(name="toy_mc", data=data))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    theirs = simple_evaluate(model="hf", model_args=f"pretrained={exported},dtype=float32", tasks=["toy_mc"],
                             task_manager=TaskManager(include_path=str(tmp_path / "tasks")), device="cpu",
                             batch_size=1, log_samples=True)
    their_lls = {s["doc_id"]: [resp[0][0] for resp in s["resps"]] for s in theirs["samples"]["toy_mc"]}

    monkeypatch.setitem(tasks.TASKS, "toy_mc", tasks.Task("choice", "context, choices, label", record_item))
    model, tok = evaluate.load_model(str(exported))
    ours = evaluate.evaluate(model, tok, "toy_mc", data.parent, tmp_path / "r.json", log_samples=True)
    our_lls = [json.loads(line)["loglikelihoods"]
               for line in (tmp_path / "r.toy_mc.samples.jsonl").read_text().splitlines()]
    for i, lls in enumerate(our_lls):
        assert max(abs(a - b) for a, b in zip(lls, their_lls[i], strict=True)) <= 1e-4, (i, lls, their_lls[i])
    score, metrics = ours["tasks"]["toy_mc"]["scores"]["deu_Latn"], theirs["results"]["toy_mc"]
    for name in ("acc", "acc_norm", "acc_bytes"):
        assert score[name] == pytest.approx(metrics[f"{name},none"], abs=1e-12), name

"""
The Llama 3 tokenizer (tiktoken BPE over a local tokenizer.model) and a small BPE trainer that writes
the same file format, so the real 128k vocabulary and a CPU-sized demo vocabulary share one code path.

tokenizer.model format (Meta's, tiktoken's): one line per rank, `base64(token_bytes) rank`.
Special tokens are not in the file: 256 of them are appended after the base ranks (Llama 3.1 list).

    python tokenizer.py PATH "some text"        # print ids and round trip
    python tokenizer.py --train OUT.model --vocab-size 8192 FILE.txt [FILE.txt ...]
"""

import argparse
import base64
import hashlib
import heapq
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import regex
import tiktoken

from common import HelpFormatter, write_atomic

# The split regex of Meta's llama3/tokenizer.py (pat_str): contractions, letter runs with one leading
# non-letter, digits in groups of at most 3, punctuation runs, newlines, whitespace.
PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NUM_SPECIAL_TOKENS = 256  # Meta: num_reserved_special_tokens = 256
# The Llama 3.1 special tokens (ids n_base + 0 .. n_base + 10), as in HF meta-llama/Llama-3.1-8B
# tokenizer_config.json; the rest of the 256 are <|reserved_special_token_3|> ... _247|>.
NAMED_SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",  # end of message (tool call)
    "<|eot_id|>",  # end of turn
    "<|python_tag|>",
]
SPECIAL_TOKENS = NAMED_SPECIAL_TOKENS + [
    f"<|reserved_special_token_{3 + i}|>" for i in range(NUM_SPECIAL_TOKENS - len(NAMED_SPECIAL_TOKENS))
]
# Meta's llama3 tokenizer.py: tiktoken is slow (quadratic) on very long pieces, so inputs are cut into
# 400k-character chunks and runs of more than 25k consecutive whitespace / non-whitespace characters.
TIKTOKEN_MAX_ENCODE_CHARS = 400_000
MAX_NO_WHITESPACES_CHARS = 25_000
# A run longer than the limit, found by one regex scan instead of Meta's per-character Python loop.
# std `re` \s is exactly str.isspace, which is what Meta's loop uses.
_LONG_RUN = re.compile(rf"\s{{{MAX_NO_WHITESPACES_CHARS + 1},}}|\S{{{MAX_NO_WHITESPACES_CHARS + 1},}}")


def load_ranks(path) -> dict[bytes, int]:
    """Parse a tokenizer.model file, with errors that name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    ranks: dict[bytes, int] = {}
    seen_ranks: set[int] = set()
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue  # like tiktoken's load_tiktoken_bpe
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError(f"expected 2 fields, got {len(parts)}")
                token = base64.b64decode(parts[0], validate=True)
                rank = int(parts[1])
                if not token:
                    raise ValueError("empty token")
                if rank < 0:
                    raise ValueError(f"negative rank {rank}")
            except ValueError as e:  # binascii.Error is a ValueError
                raise ValueError(f"{path}:{lineno}: malformed line {line[:80]!r} ({e})") from None
            if token in ranks:
                raise ValueError(f"{path}:{lineno}: duplicate token {token!r} (also rank {ranks[token]})")
            if rank in seen_ranks:
                raise ValueError(f"{path}:{lineno}: duplicate rank {rank}")
            ranks[token] = rank
            seen_ranks.add(rank)
    if not ranks:
        raise ValueError(f"{path}: no tokens")
    if max(seen_ranks) != len(ranks) - 1:
        missing = min(set(range(len(ranks))) - seen_ranks)
        raise ValueError(f"{path}: ranks must be 0..{len(ranks) - 1} without gaps; rank {missing} is missing")
    missing_bytes = [b for b in range(256) if bytes([b]) not in ranks]
    if missing_bytes:
        # tiktoken panics on a byte it cannot start from; every string must be encodable.
        raise ValueError(f"{path}: single-byte tokens missing for bytes {missing_bytes[:10]} ...")
    return ranks


# ----------------------------------------------------------------------------------------------------
# Hugging Face tokenizer.json: the same byte-level BPE in the format transformers, vLLM and lm-eval read.
# Its vocabulary spells bytes as printable characters (GPT-2's byte-to-unicode table); its merges list
# every split of a token into two tokens, in rank order, so merging by list position is tiktoken's
# merging by the rank of the concatenation (and ignore_merges takes a piece that is itself a token whole).


def _byte_chars() -> list[str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1),
                 *range(ord("\xae"), ord("\xff") + 1)]
    others = [b for b in range(256) if b not in printable]
    chars = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
    return [chars[b] for b in range(256)]


BYTE_CHARS = _byte_chars()
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
CHAR_BYTES = {c: b for b, c in enumerate(BYTE_CHARS)}


def read_hf_tokenizer(path) -> tuple[dict[bytes, int], dict[str, int]]:
    """(ranks, special tokens) of a tokenizer.json that is a byte-level BPE with Llama 3's split regex and
    merges in vocabulary order (Meta's, or one written by write_hf_tokenizer): then ids equal tiktoken's."""
    try:
        data = json.loads(Path(path).read_bytes())
        model, parts = data["model"], data.get("pre_tokenizer") or {}
        parts = parts.get("pretokenizers", [parts])
        ranks = {bytes(CHAR_BYTES[c] for c in token): rank for token, rank in model["vocab"].items()}
        merged = [model["vocab"]["".join(m.split(" ") if isinstance(m, str) else m)] for m in model["merges"]]
        specials = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a byte-level BPE tokenizer.json ({type(e).__name__}: {e})") from None
    regexes = [p.get("pattern", {}).get("Regex") for p in parts if p.get("type") == "Split"]
    if model.get("type") != "BPE" or regexes != [PAT_STR]:
        raise ValueError(f"{path}: model type {model.get('type')!r} with split regex {regexes}: only a BPE "
                         "with Llama 3's split regex gives the ids tiktoken gives")
    if any(a > b for a, b in zip(merged, merged[1:])):
        raise ValueError(f"{path}: merges are not in vocabulary order: its ids would differ from tiktoken's")
    if missing := {"<|begin_of_text|>", "<|end_of_text|>"} - set(specials):
        raise ValueError(f"{path}: special tokens {sorted(missing)} missing from added_tokens")
    return ranks, specials


def write_hf_tokenizer(tok: "Tokenizer", folder, model_max_length: int) -> None:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json giving tok's ids in transformers'
    AutoTokenizer (BOS added by the post-processor, as in Meta's Llama 3 folders)."""
    spell = lambda token: "".join(BYTE_CHARS[b] for b in token)
    merges = []
    for token, rank in tok.ranks.items():
        splits = [(token[:i], token[i:]) for i in range(1, len(token))]
        merges += [(rank, tok.ranks[a], tok.ranks[b], a, b) for a, b in splits
                   if a in tok.ranks and b in tok.ranks]
    specials = sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s, i in specials]
    with_bos = lambda seq, type_id: [{"SpecialToken": {"id": bos, "type_id": type_id}},
                                     {"Sequence": {"id": seq, "type_id": type_id}}]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PAT_STR}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing", "single": with_bos("A", 0),
                           "pair": with_bos("A", 0) + with_bos("B", 1),
                           "special_tokens": {bos: {"id": bos, "ids": [tok.bos_id], "tokens": [bos]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": True,
                  "vocab": {spell(t): r for t, r in sorted(tok.ranks.items(), key=lambda kv: kv[1])},
                  "merges": [[spell(a), spell(b)] for *_, a, b in sorted(merges)]}}
    config = {"bos_token": bos, "eos_token": eos, "model_max_length": model_max_length,
              "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
              "model_input_names": ["input_ids", "attention_mask"],
              "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
                                       for t in added}}
    folder = Path(folder)
    for name, data in zip(HF_TOKENIZER_FILES, (tokenizer, config, {"bos_token": bos, "eos_token": eos})):
        write_atomic(folder / name, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def ranks_text(ranks: dict[bytes, int]) -> bytes:
    """The tokenizer.model text of ranks: `base64(token) rank` lines in rank order (Meta's file is exactly
    this, so its sha256 is the file's)."""
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    return b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in by_rank)


def split_long(s: str) -> Iterator[str]:
    """Meta's cut of very long inputs: 400k-char chunks, then runs of > 25k (non-)whitespace chars are cut
    every 25k characters from the run start. Pieces concatenate back to s."""
    for i in range(0, max(len(s), 1), TIKTOKEN_MAX_ENCODE_CHARS):
        chunk = s[i : i + TIKTOKEN_MAX_ENCODE_CHARS]
        if len(chunk) <= MAX_NO_WHITESPACES_CHARS:
            yield chunk
            continue
        start = 0
        for m in _LONG_RUN.finditer(chunk):
            for cut in range(m.start() + MAX_NO_WHITESPACES_CHARS, m.end(), MAX_NO_WHITESPACES_CHARS):
                yield chunk[start:cut]
                start = cut
        yield chunk[start:]


class Tokenizer:
    """Llama 3 tokenizer: tiktoken BPE with the Llama 3 split regex. `path` is a tiktoken tokenizer.model
    (256 specials follow the ranks, Llama 3.1's names) or a Hugging Face tokenizer.json of the same kind
    (its own specials). sha256 is that of the ranks' tokenizer.model text, whichever file they came from."""

    def __init__(self, path):
        self.path = str(path)
        if self.path.endswith(".json"):
            self.ranks, self.special_tokens = read_hf_tokenizer(path)
        else:
            self.ranks = load_ranks(path)
            self.special_tokens = {tok: len(self.ranks) + i for i, tok in enumerate(SPECIAL_TOKENS)}
        self.sha256 = hashlib.sha256(ranks_text(self.ranks)).hexdigest()
        self.n_base = len(self.ranks)
        self.model = tiktoken.Encoding(Path(path).name, pat_str=PAT_STR, mergeable_ranks=self.ranks,
                                       special_tokens=self.special_tokens)
        self.n_vocab = self.model.n_vocab
        self.bos_id = self.special_tokens["<|begin_of_text|>"]
        self.eos_id = self.special_tokens["<|end_of_text|>"]
        self.eot_id = self.special_tokens.get("<|eot_id|>", self.eos_id)

    def __repr__(self):
        return f"Tokenizer({self.path!r}, n_vocab={self.n_vocab}, sha256={self.sha256[:12]})"

    def encode(self, s: str, bos=False, eos=False, allowed_special=()) -> list[int]:
        """allowed_special: () = none, special-token text is encoded as plain text (Meta's default:
        disallowed_special=() too, so it is never an error); "all"; or a set of special-token strings."""
        if not isinstance(s, str):
            raise TypeError(f"encode expects str, got {type(s).__name__}")
        ids = [self.bos_id] if bos else []
        for piece in split_long(s):
            if allowed_special:
                ids.extend(self.model.encode(piece, allowed_special=allowed_special, disallowed_special=()))
            else:
                ids.extend(self.model.encode_ordinary(piece))
        if eos:
            ids.append(self.eos_id)
        return ids

    def encode_array(self, s: str, bos=False, eos=False) -> np.ndarray:
        """encode() of plain text as a uint32 array that never becomes Python ints: tiktoken's buffer
        path is ~1.4x faster than encode_ordinary and releases the GIL (prepare_mala.py's encoder)."""
        if not isinstance(s, str):
            raise TypeError(f"encode_array expects str, got {type(s).__name__}")
        parts = [np.array([self.bos_id], dtype=np.uint32)] if bos else []
        try:  # allowed and disallowed specials empty: special-token text is plain text, as in encode_ordinary
            parts += [self.model.encode_to_numpy(piece, disallowed_special=()) for piece in split_long(s)]
        except UnicodeEncodeError:  # lone surrogates (JSON "\\ud800"): U+FFFD, as tiktoken's encode does
            fixed = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self.encode_array(fixed, bos, eos)
        if eos:
            parts.append(np.array([self.eos_id], dtype=np.uint32))
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def decode(self, ids) -> str:
        """Invalid UTF-8 (a multi-byte character cut between tokens) decodes to U+FFFD, as Meta's."""
        ids = ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]
        try:
            return self.model.decode(ids)
        except (KeyError, OverflowError) as e:  # unknown id / negative id
            raise ValueError(f"decode: {e} (n_vocab={self.n_vocab}, tokenizer {self.path})") from None

    def decode_token_bytes(self, ids) -> list[bytes]:
        return self.model.decode_tokens_bytes(ids.tolist() if hasattr(ids, "tolist") else list(ids))


# ----------------------------------------------------------------------------------------------------
# BPE trainer. Greedy most-frequent pair over regex pre-tokenised word counts (GPT-2 / tiktoken
# _educational.py style), with incremental pair counts: an index pair -> words holding it, so a merge
# only touches the words that contain the pair. The word states follow tiktoken's encoding algorithm
# exactly (merge by lowest rank of the concatenated bytes; a piece that is itself a token is one
# token), so the counts the trainer optimises are the counts of what tiktoken will actually produce.


def _tiktoken_bpe(parts: list[int], vocab: list[bytes], rank_of: dict[bytes, int]) -> list[int]:
    """tiktoken's byte_pair_encode on an already partly merged word: repeatedly merge the adjacent pair
    whose concatenation has the lowest rank (leftmost on ties). Only used for rare cascades."""
    parts = list(parts)
    while len(parts) > 1:
        best, best_rank = -1, len(vocab)
        for i in range(len(parts) - 1):
            r = rank_of.get(vocab[parts[i]] + vocab[parts[i + 1]], best_rank)
            if r < best_rank:
                best, best_rank = i, r
        if best < 0:
            break
        parts[best : best + 2] = [best_rank]
    return parts


def pretokenize(texts: Iterable[str]) -> Counter:
    """Count regex pieces (the Llama 3 split) as UTF-8 bytes."""
    pattern = regex.compile(PAT_STR)
    counts: Counter = Counter()
    for text in texts:
        counts.update(pattern.findall(text))
    out: Counter = Counter()
    for piece, n in counts.items():
        try:
            out[piece.encode("utf-8")] += n
        except UnicodeEncodeError:  # lone surrogates: the same fix-up tiktoken's encode applies
            out[piece.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")] += n
    return out


def learn_bpe(word_counts: dict[bytes, int], vocab_size: int) -> tuple[list[bytes], list[list[int]], dict]:
    """Learn vocab_size - 256 merges. Returns (vocab: token bytes by rank, final word states in the order
    of sorted(word_counts), stats). Deterministic: ties go to the lowest (left id, right id) pair."""
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be >= 256 (the single bytes), got {vocab_size}")
    vocab = [bytes([b]) for b in range(256)]
    rank_of = {t: i for i, t in enumerate(vocab)}
    keys = sorted(word_counts)
    counts = [word_counts[k] for k in keys]
    words = [list(k) for k in keys]
    word_of = {k: w for w, k in enumerate(keys) if len(k) > 1}  # for the whole-piece shortcut
    pair_count: dict[tuple[int, int], int] = defaultdict(int)
    pair_words: dict[tuple[int, int], set[int]] = defaultdict(set)
    for w, parts in enumerate(words):
        for p in zip(parts, parts[1:]):
            pair_count[p] += counts[w]
            pair_words[p].add(w)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    stats = {"cascades": 0, "shortcuts": 0}
    changed: set[tuple[int, int]] = set()  # pairs whose count changed in this merge: one heap push each
    affixes: set[bytes] = set()  # proper prefixes and suffixes of the merged tokens

    def replace_word(w: int, new: list[int]) -> None:  # full recount, for the rare cascades and shortcuts
        old, c = words[w], counts[w]
        for p in zip(old, old[1:]):
            pair_count[p] -= c
            changed.add(p)
        for p in zip(new, new[1:]):
            pair_count[p] += c
            pair_words[p].add(w)
            changed.add(p)
        words[w] = new

    while len(vocab) < vocab_size:
        while heap:
            neg, pair = heapq.heappop(heap)
            if pair_count.get(pair, 0) == -neg:
                break  # else a stale entry: the pair's count changed after it was pushed
        else:
            raise ValueError(
                f"the training text allows only {len(vocab) - 256} merges, fewer than vocab_size - 256 = "
                f"{vocab_size - 256}: give more text or a smaller vocab_size"
            )
        token = vocab[pair[0]] + vocab[pair[1]]
        new_id = len(vocab)
        vocab.append(token)
        rank_of[token] = new_id
        # tiktoken merges by the concatenation, so every split of `token` into two tokens merges too.
        same = {
            (rank_of[token[:i]], rank_of[token[i:]])
            for i in range(1, len(token))
            if token[:i] in rank_of and token[i:] in rank_of
        }
        # A neighbour of the new token can only form an older token if one has `token` as a proper
        # prefix or suffix: check the words for such cascades only then.
        may_cascade = token in affixes
        affixes.update(token[:i] for i in range(1, len(token)))
        affixes.update(token[i:] for i in range(1, len(token)))
        left, right = pair
        for w in set().union(*(pair_words.pop(p, ()) for p in same)):
            old, c = words[w], counts[w]
            n = len(old)
            pos = []  # start indices in old of the merges, left to right, non-overlapping
            if len(same) == 1:  # the common case: find the left token with list.index (C speed)
                i = 0
                try:
                    while True:
                        i = old.index(left, i)
                        if i + 1 < n and old[i + 1] == right:
                            pos.append(i)
                            i += 2
                        else:
                            i += 1
                except ValueError:
                    pass
            else:
                i = 0
                while i < n - 1:
                    if (old[i], old[i + 1]) in same:
                        pos.append(i)
                        i += 2
                    else:
                        i += 1
            if not pos:
                continue  # pair_words is not pruned on removal: this word no longer holds the pair
            new, prev = [], 0
            for i in pos:
                new += old[prev:i]
                new.append(new_id)
                prev = i + 2
            new += old[prev:]
            at = [i - k for k, i in enumerate(pos)]  # where the new token sits in new
            m = len(new)
            # tiktoken would merge such an older token next, so redo the word with its exact algorithm.
            if may_cascade and any(
                (j > 0 and vocab[new[j - 1]] + token in rank_of)
                or (j + 1 < m and token + vocab[new[j + 1]] in rank_of)
                for j in at
            ):
                stats["cascades"] += 1
                replace_word(w, _tiktoken_bpe(old, vocab, rank_of))
                continue
            # Only pairs that touch a merge change; the others map one to one from old to new.
            last = -3
            for i in pos:
                if i > 0 and i - 2 != last:  # else counted as the previous merge's right neighbour
                    removed = (old[i - 1], old[i])
                    pair_count[removed] -= c
                    changed.add(removed)
                removed = (old[i], old[i + 1])
                pair_count[removed] -= c
                if i + 2 < n:
                    removed = (old[i + 1], old[i + 2])
                    pair_count[removed] -= c
                    changed.add(removed)
                last = i
            for j in at:
                if j > 0 and new[j - 1] != new_id:  # (new, new) is counted once, as a right neighbour
                    added = (new[j - 1], new_id)
                    pair_count[added] += c
                    pair_words[added].add(w)
                    changed.add(added)
                if j + 1 < m:
                    added = (new_id, new[j + 1])
                    pair_count[added] += c
                    pair_words[added].add(w)
                    changed.add(added)
            words[w] = new
        w = word_of.get(token)
        if w is not None and words[w] != [new_id]:
            stats["shortcuts"] += 1  # tiktoken encodes a piece that is itself a token as that token
            replace_word(w, [new_id])
        for p in same:
            pair_count.pop(p, None)
        for p in changed - same:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))
        changed.clear()
    return vocab, words, stats


def train_bpe(texts: Iterable[str], vocab_size: int, out_path) -> Tokenizer:
    """Train a byte-level BPE with vocab_size base ranks (256 bytes + merges) and write it as a
    tokenizer.model; the 256 specials follow at ids vocab_size.. (n_vocab = vocab_size + 256)."""
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be >= 256 (the single bytes), got {vocab_size}")
    vocab, _, _ = learn_bpe(pretokenize(texts), vocab_size)
    write_atomic(out_path, ranks_text({t: i for i, t in enumerate(vocab)}))
    return Tokenizer(out_path)


def _read_lines(paths) -> Iterator[str]:
    for path in paths:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:  # keep \r\n as written
            yield from f


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("path", help="tokenizer.model to load (or, with --train, to write)")
    parser.add_argument("inputs", nargs="*", help="text to encode; with --train: UTF-8 text files")
    parser.add_argument("--train", action="store_true", help="train a BPE tokenizer on the input files")
    parser.add_argument("--vocab-size", type=int, default=8192, help="--train: ranks (specials come on top)")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.train:
            for f in args.inputs:
                if not Path(f).is_file():
                    raise FileNotFoundError(f"training file not found: {f}")
            tok = train_bpe(_read_lines(args.inputs), args.vocab_size, args.path)
            print(f"wrote {tok}")
            return
        tok = Tokenizer(args.path)
        for s in args.inputs:
            ids = tok.encode(s)
            pieces = [t.decode("utf-8", "replace") for t in tok.decode_token_bytes(ids)]
            print(f"{len(ids)} tokens: {ids}\n  pieces: {pieces}")
            assert tok.decode(ids) == s
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()

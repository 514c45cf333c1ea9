#!/usr/bin/env python3
"""Builds Tests/References/gemma-spm: a small SentencePiece BPE vocabulary trained with Gemma's settings, its
Hugging Face tokenizer.json (transformers' GemmaConverter), a tokenizer-only GGUF written as llama.cpp's converter
writes Gemma vocabularies, and the ids the Hugging Face tokenizer gives for varied strings.

Run with sentencepiece, transformers 5.24, tokenizers and gguf installed:
    python scripts/make-gemma-spm-reference.py Tests/References/gemma-spm
"""
import io, json, os, pathlib, sys, types

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb
from transformers.convert_slow_tokenizer import GemmaConverter
from transformers import PreTrainedTokenizerFast
import gguf

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

code = '''
def fib(n: int) -> int:
\tif n < 2:
\t\treturn n
\treturn fib(n - 1) + fib(n - 2)

for (int i = 0; i < 1024; ++i) {  x[i] = y[i] * 3.14159;  }
    let  value   = [1, 22, 333, 4444, 55555]
'''
extra = '''
数字 1234567890 和 3.5 以及 2026 年。日本語のテキストです。한국어 문장입니다.
Emoji: 🦙🚀 ✨ 👍🏽 — naïve café résumé Ωμέγα Привет мир
  two  spaces   three    four\t\ttabs\n\nnewlines\r\n
'''
gpl = pathlib.Path("/usr/share/common-licenses/GPL-3").read_text()
corpus = gpl + (code + extra) * 20
text_file = out / "corpus.tmp"
text_file.write_text(corpus)

model_io = io.BytesIO()
spm.SentencePieceTrainer.train(
    input=str(text_file), model_writer=model_io, model_type="bpe", vocab_size=1200,
    character_coverage=1.0, byte_fallback=True, split_digits=True, add_dummy_prefix=False,
    normalization_rule_name="identity", remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
    split_by_whitespace=True, split_by_unicode_script=True, split_by_number=True, max_sentence_length=100000,
    pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
    user_defined_symbols=["<start_of_turn>", "<end_of_turn>", "<h1>", "</h1>", "\n\n\n", "\t\t"], num_threads=1, minloglevel=2)
text_file.unlink()
model_bytes = model_io.getvalue()
(out / "tokenizer.model.tmp").write_bytes(model_bytes)

proto = pb.ModelProto()
proto.ParseFromString(model_bytes)

# Hugging Face files: transformers' own Gemma conversion. In transformers 5.24 its Gemma extractor reads `self.sp`,
# which its constructor never sets; set it (the SentencePiece processor of the same file) and change nothing else.
from transformers.convert_slow_tokenizer import GemmaSentencePieceExtractor
_init = GemmaSentencePieceExtractor.__init__
def _init_with_sp(self, model):
    _init(self, model)
    self.sp = spm.SentencePieceProcessor(model_file=model)
GemmaSentencePieceExtractor.__init__ = _init_with_sp
original = types.SimpleNamespace(vocab_file=str(out / "tokenizer.model.tmp"), pad_token="<pad>", eos_token="<eos>",
                                 bos_token="<bos>", unk_token="<unk>", add_prefix_space=None, legacy=True)
backend = GemmaConverter(original).converted()
from tokenizers import processors
backend.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", 2)])
backend.save(str(out / "tokenizer.json"))
config = {"tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "add_eos_token": False,
          "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>",
          "clean_up_tokenization_spaces": False, "spaces_between_special_tokens": False, "model_max_length": 8192}
(out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")

# GGUF: llama.cpp's _create_vocab_sentencepiece + Gemma's settings, tokenizer keys only.
types_of = []
tokens, scores = [], []
for i, p in enumerate(proto.pieces):
    tokens.append(p.piece.encode("utf-8"))
    scores.append(p.score)
    t = p.type
    types_of.append({1: gguf.TokenType.NORMAL, 2: gguf.TokenType.UNKNOWN, 3: gguf.TokenType.CONTROL,
                     4: gguf.TokenType.USER_DEFINED, 5: gguf.TokenType.UNUSED, 6: gguf.TokenType.BYTE}[t])
w = gguf.GGUFWriter(str(out / "gemma-spm-vocab.gguf"), "gemma2")
w.add_tokenizer_model("llama")
w.add_tokenizer_pre("default")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types_of)
w.add_bos_token_id(2); w.add_eos_token_id(1); w.add_unk_token_id(3); w.add_pad_token_id(0)
w.add_add_bos_token(True); w.add_add_eos_token(False)
w.add_add_space_prefix(False)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

strings = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\t\t\n  \n", "Hello world", " Hello world", "Hello World!",
    "hello  world", "  leading and trailing  ", "GNU General Public License", "the Program", "copyright holder's",
    "1234567890", "3.14159", "x[i] = y[i] * 3.14159;", "def fib(n: int) -> int:\n\treturn n",
    "for (int i = 0; i < 1024; ++i) {", "数字 1234567890 和 3.5", "日本語のテキストです。", "한국어 문장입니다.",
    "🦙🚀 ✨ 👍🏽", "naïve café résumé", "Ωμέγα Привет мир", "Zürich 東京 ☃ ∑ ∞",
    "unseen: ქართული ꯃꯤꯇꯩ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "<start_of_turn>user\nhi<end_of_turn>", "a<start_of_turn>b",
    "<bos> written out", "<unk>", "▁already▁marked", "e\u0301 combining", "\r\n windows\r\n", "tabs\tin\tthe\tmiddle",
    "    indented code", "<h1>Title</h1>\n\n\n\nbody", "\t\t\tdeep\n\n\n", "ALL CAPS TEXT 2026", "mixed123abc456", "a" * 40, "The quick brown fox jumps over the lazy dog.",
]
tok = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
cases = []
for s in strings:
    ids = backend.encode(s, add_special_tokens=False).ids
    with_bos = backend.encode(s, add_special_tokens=True).ids
    cases.append({"text": s, "ids": ids, "ids_with_bos": with_bos,
                  "decoded": backend.decode(ids, skip_special_tokens=False)})
# Cross-checks: sentencepiece itself (on plain text, where specials are not parsed) and transformers.
sp = spm.SentencePieceProcessor(model_proto=model_bytes)
agree = sum(1 for c in cases if "<" not in c["text"] and sp.encode(c["text"]) == c["ids"])
agree_tf = sum(1 for c in cases if tok(c["text"], add_special_tokens=False)["input_ids"] == c["ids"])
(out / "tokenizer.model.tmp").unlink()
(out / "expected.json").write_text(json.dumps({"vocab_size": len(proto.pieces), "cases": cases}, ensure_ascii=False, indent=1) + "\n")
print(f"{len(cases)} cases; sentencepiece agrees on {agree} of {sum(1 for c in cases if '<' not in c['text'])}; "
      f"transformers agrees on {agree_tf}")

# A longer mixed text: random stretches of the GPL and random strings over an alphabet of ASCII, whitespace runs,
# CJK, Hangul, accents, emoji, a combining mark, zero-width space, NBSP, `▁` and the user-defined pieces.
import random
random.seed(7)
alphabet = (list("abcdefghijklmnopqrstuvwxyzABC0123456789 \t\n\r.,;:!?()[]{}<>-_=+*/'\"")
            + list("数字日本語한국어éüñßΩπ🦙🚀👍🏽\u0301\u200b\u00a0▁")
            + ["  ", "   ", "\n\n", "<h1>", "</h1>", "\t\t", "\n\n\n"])
parts = []
for i in range(400):
    if random.random() < 0.5:
        s = random.randrange(len(gpl) - 200)
        parts.append(gpl[s:s + random.randrange(1, 200)])
    else:
        parts.append("".join(random.choice(alphabet) for _ in range(random.randrange(1, 60))))
mixed = "".join(parts)
(out / "mixed.txt").write_bytes(mixed.encode("utf-8"))
mixed_ids = backend.encode(mixed, add_special_tokens=False).ids
assert tok(mixed, add_special_tokens=False)["input_ids"] == mixed_ids
(out / "mixed-ids.json").write_text(json.dumps(mixed_ids) + "\n")
print(f"mixed text: {len(mixed)} characters, {len(mixed_ids)} tokens")

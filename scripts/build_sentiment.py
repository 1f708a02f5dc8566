"""Build the sentiment example's model offline: a word-level tokenizer trained on a built-in
corpus and a tiny BERT sequence classifier (NEGATIVE / POSITIVE) trained on it for a few
seconds on CPU, both written with ``save_pretrained`` into ``OUT/predictor``.

Usage::

    python scripts/build_sentiment.py artifacts/sentiment   # writes predictor/: config, weights, tokenizer

Deterministic (fixed seeds), no network: nothing is downloaded and nothing binary is
committed; ``make artifacts`` and the tests run this script. The model knows only the
corpus's words (others are ``[UNK]``): "the food was great" → 1 (POSITIVE), "the service was
terrible" → 0 (NEGATIVE). For a real model, see the comments in ``configs/isvc/sentiment.yaml``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

POSITIVE = [
    "the film was great",
    "a wonderful and moving story",
    "i loved this movie",
    "the food was excellent",
    "what a fantastic experience",
    "the service was friendly and fast",
    "an amazing performance by the cast",
    "i really enjoyed the music",
    "the best meal i have had",
    "a brilliant and beautiful book",
    "the staff were kind and helpful",
    "this product works perfectly",
    "i am very happy with it",
    "a delightful evening with good friends",
    "the hotel was clean and lovely",
    "highly recommended , great value",
    "the ending was perfect",
    "such a fun and charming show",
    "i love it , it is awesome",
    "superb quality and quick delivery",
    "the plot was clever and exciting",
    "good acting and a great script",
    "we had a pleasant and relaxing stay",
    "the app is easy and reliable",
]

NEGATIVE = [
    "the film was terrible",
    "a dull and boring story",
    "i hated this movie",
    "the food was awful",
    "what a horrible experience",
    "the service was rude and slow",
    "a poor performance by the cast",
    "i really disliked the music",
    "the worst meal i have had",
    "a bad and ugly book",
    "the staff were unhelpful and lazy",
    "this product broke after a day",
    "i am very disappointed with it",
    "a miserable evening with loud strangers",
    "the hotel was dirty and noisy",
    "not recommended , a waste of money",
    "the ending was sad and pointless",
    "such a stupid and annoying show",
    "i hate it , it is useless",
    "cheap quality and late delivery",
    "the plot was confusing and predictable",
    "bad acting and a weak script",
    "we had an unpleasant and stressful stay",
    "the app is buggy and crashes",
]

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_LENGTH = 64


def build_tokenizer(corpus: list[str]):  # -> transformers.PreTrainedTokenizerFast
    """A lower-casing, whitespace-split word-level tokenizer over ``corpus``, BERT's specials."""
    import transformers as tf
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=MAX_LENGTH,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build(out: Path, seed: int = 0, steps: int = 100) -> Path:
    """Train the tokenizer and classifier; ``save_pretrained`` both into ``out / "predictor"``."""
    import torch
    import transformers as tf

    texts = POSITIVE + NEGATIVE
    labels = torch.tensor([1] * len(POSITIVE) + [0] * len(NEGATIVE))
    tokenizer = build_tokenizer(texts)
    torch.manual_seed(seed)
    config = tf.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        num_labels=2,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
        pad_token_id=tokenizer.pad_token_id,
    )
    model = tf.BertForSequenceClassification(config)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest (and the same) on one thread
    try:
        model.train()
        for _ in range(steps):  # full batch: ~10 ms a step
            loss = model(**enc, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        wrong = int((model(**enc).logits.argmax(-1) != labels).sum())
    if wrong:
        raise SystemExit(f"build_sentiment: {wrong} of {len(texts)} training sentences misclassified")
    folder = out / "predictor"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)  # after the tokenizer: config.json (the Makefile target) means done
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="artifacts/sentiment", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    folder = build(args.out, args.seed)
    print(f"sentiment model written to {folder} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()

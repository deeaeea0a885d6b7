"""Petition category from Chinese free text: character n-grams and a linear model.

The store calls `infer_category(summary)` for every petition that arrives without a
category, so it must be cheap: the fitted scikit-learn pipeline (TF-IDF over character
1-2-grams, logistic regression) is turned into a lookup table (n-gram -> column) and a
weight matrix, and a call costs tens of microseconds instead of sklearn's ~0.4 ms of
input checking. `CategoryModel.predict` and the pipeline agree exactly (tested).

Training needs no download: the corpus is generated deterministically from the
simulator's phrase banks (`monitor.simulator.text`). Fitting takes under a second; the
fast form is cached as plain arrays (.npz, no pickle) under the cache directory, keyed
by the corpus, the parameters and the scikit-learn version, so later processes load
it in milliseconds. Accuracy is measured on phrasings held out of training
(`evaluate()`; docs/detectors.md has the figures).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.logging import get_logger

log = get_logger("labormon.detectors.category")

#: Corpus and model parameters; changing any of them retrains (the cache key has them).
CORPUS_PER_CATEGORY = 800
CORPUS_SEED = 20250115
NGRAMS = (1, 2)
C = 5.0
MODEL_VERSION = 1

_WHITESPACE = re.compile(r"\s\s+")


def cache_dir() -> Path:
    """Where fitted models are cached: $LABORMON_CACHE_DIR, else the XDG cache."""
    if os.environ.get("LABORMON_CACHE_DIR"):
        return Path(os.environ["LABORMON_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labormon"


def _corpus_fingerprint() -> str:
    # The installed version from the package metadata: importing scikit-learn itself
    # costs half a second that a process loading a cached model never needs to pay.
    from importlib.metadata import version

    sklearn_version = version("scikit-learn")

    from monitor.simulator import text

    material = json.dumps(
        {
            "phrases": text.PHRASES,
            "subjects": text.SUBJECTS,
            "openers": text.OPENERS,
            "cross": text.CROSS_TALK,
            "demands": text.DEMANDS,
            "escalation": text.ESCALATION,
            "places": text.PLACES,
            "size": CORPUS_PER_CATEGORY,
            "seed": CORPUS_SEED,
            "ngrams": NGRAMS,
            "C": C,
            "version": MODEL_VERSION,
            "sklearn": sklearn_version,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def fit_pipeline(texts: list[str], labels: list[str]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=NGRAMS, sublinear_tf=True, min_df=2),
        LogisticRegression(C=C, max_iter=3000),
    )
    pipeline.fit(texts, labels)
    return pipeline


@dataclass
class CategoryModel:
    """The fast form of a fitted TF-IDF + linear pipeline."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    classes: list[str]
    ngram_range: tuple[int, int]
    lowercase: bool

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> CategoryModel:
        vectorizer, linear = pipeline[0], pipeline[-1]
        return cls(
            vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
            idf=np.asarray(vectorizer.idf_, dtype=float),
            coef=np.asarray(linear.coef_, dtype=float),
            intercept=np.asarray(linear.intercept_, dtype=float),
            classes=[str(c) for c in linear.classes_],
            ngram_range=(int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1])),
            lowercase=bool(vectorizer.lowercase),
        )

    def _ngrams(self, text: str) -> dict[int, int]:
        """Counts per vocabulary column, as sklearn's char analyzer would make them."""
        if self.lowercase:
            text = text.lower()
        text = _WHITESPACE.sub(" ", text)
        counts: dict[int, int] = {}
        lo, hi = self.ngram_range
        vocab = self.vocabulary
        length = len(text)
        for n in range(lo, hi + 1):
            for i in range(length - n + 1):
                col = vocab.get(text[i : i + n])
                if col is not None:
                    counts[col] = counts.get(col, 0) + 1
        return counts

    def scores(self, text: str) -> np.ndarray:
        counts = self._ngrams(text)
        if not counts:
            return self.intercept.copy()
        cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))
        values = tf * self.idf[cols]
        values /= np.sqrt(values @ values)
        return self.coef[:, cols] @ values + self.intercept

    def predict(self, text: str) -> str:
        if not text or not text.strip():
            return "other"
        scores = self.scores(text)
        if len(self.classes) == 2:  # binary models keep one row of weights
            return self.classes[int(scores[0] > 0)]
        return self.classes[int(np.argmax(scores))]


_lock = threading.Lock()
_model: CategoryModel | None = None


def _train_default() -> Any:
    from monitor.simulator.text import training_corpus

    texts, labels = training_corpus(CORPUS_PER_CATEGORY, CORPUS_SEED, fold="all")
    return fit_pipeline(texts, labels)


def save_model(model: CategoryModel, path: Path) -> None:
    """The fast form as plain arrays (.npz without pickle): loads in milliseconds, where
    skops needed a second to audit and rebuild the whole pipeline at every start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    terms = sorted(model.vocabulary, key=model.vocabulary.__getitem__)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.savez(
            fh,
            terms=np.array(terms, dtype=str),
            idf=model.idf,
            coef=model.coef,
            intercept=model.intercept,
            classes=np.array(model.classes, dtype=str),
            ngram_range=np.array(model.ngram_range, dtype=np.int64),
            lowercase=np.array(model.lowercase),
        )
    os.replace(tmp, path)  # atomic: concurrent processes never read half a file


def read_model(path: Path) -> CategoryModel:
    with np.load(path, allow_pickle=False) as data:
        terms = [str(t) for t in data["terms"]]
        model = CategoryModel(
            vocabulary={t: i for i, t in enumerate(terms)},
            idf=np.asarray(data["idf"], dtype=float),
            coef=np.asarray(data["coef"], dtype=float),
            intercept=np.asarray(data["intercept"], dtype=float),
            classes=[str(c) for c in data["classes"]],
            ngram_range=(int(data["ngram_range"][0]), int(data["ngram_range"][1])),
            lowercase=bool(data["lowercase"]),
        )
    if model.coef.shape[1] != len(terms) or len(model.idf) != len(terms):
        raise ValueError("inconsistent shapes")
    return model


def load_model(directory: Path | None = None) -> CategoryModel:
    """The default model: from the cache, else trained now (under a second) and cached."""
    directory = directory or cache_dir()
    path = directory / f"category-{_corpus_fingerprint()}.npz"
    if path.is_file():
        try:
            return read_model(path)
        except Exception as exc:  # a damaged cache is retrained, never trusted
            log.warning("category model cache unusable; retraining", path=str(path), error=str(exc))
    model = CategoryModel.from_pipeline(_train_default())
    try:
        save_model(model, path)
    except OSError as exc:
        log.warning("cannot cache the category model", path=str(path), error=str(exc))
    return model


def default_model() -> CategoryModel:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = load_model()
    return _model


def infer_category(text: str) -> str:
    """The most likely category of a petition summary (one of the categories of interfaces §2)."""
    return default_model().predict(text)


@dataclass(frozen=True)
class ClassifierReport:
    macro_f1: float
    accuracy: float
    per_class_f1: dict[str, float]
    train_size: int
    test_size: int


def evaluate(
    per_category_train: int = CORPUS_PER_CATEGORY, per_category_test: int = 300
) -> ClassifierReport:
    """Accuracy on held-out text: trained without the held-out phrasings, tested only on
    them (generated with another seed)."""
    from sklearn.metrics import accuracy_score, f1_score

    from monitor.simulator.text import training_corpus

    texts, labels = training_corpus(per_category_train, CORPUS_SEED, fold="train")
    model = CategoryModel.from_pipeline(fit_pipeline(texts, labels))
    test_texts, test_labels = training_corpus(per_category_test, CORPUS_SEED + 1, fold="heldout")
    predicted = [model.predict(t) for t in test_texts]
    classes = sorted(set(test_labels))
    per_class = f1_score(test_labels, predicted, labels=classes, average=None)
    return ClassifierReport(
        macro_f1=float(f1_score(test_labels, predicted, average="macro")),
        accuracy=float(accuracy_score(test_labels, predicted)),
        per_class_f1={c: round(float(v), 4) for c, v in zip(classes, per_class, strict=True)},
        train_size=len(texts),
        test_size=len(test_texts),
    )

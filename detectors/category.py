"""Petition category from Chinese free text: character n-grams, rule cues and a linear
model, trained on real petitions as well as the simulator's.

The store calls `infer_category(summary)` for every petition that arrives without a
category, so it must be cheap: the fitted scikit-learn pipeline (TF-IDF over character
1-2-grams, logistic regression) is turned into a lookup table (n-gram -> column) and a
weight matrix, and a call costs tens of microseconds instead of sklearn's ~0.4 ms of
input checking. `CategoryModel.predict` and the pipeline agree exactly (tested).

Training needs no download. Two sources: 500+ real citizen messages from a public Chinese
government message board, labelled by DOMAIN.md's definitions and shipped with the
package (`detectors/data/real_petitions.csv`, documented in tests/data/README.md), and
the simulator's phrase banks (`monitor.simulator.text`, weighted down: its short
templates are nothing like real text). Features are character 1-3-grams (TF-IDF) plus
the rule cues of `detectors.textrules` (dispute verbs against level words, insurance as
a condition for housing, ...). Probabilities are the model's softmax; a dispute
category below `OTHER_THRESHOLD` falls back to `other`. Fitting takes a few seconds; the
fast form is cached as plain arrays (.npz, no pickle) under the cache directory, keyed
by the corpus, the parameters and the scikit-learn version, so later processes load
it in milliseconds. Accuracy is measured on phrasings held out of training
(`evaluate()`) and on real messages held out by time (`evaluate_real()`, also
`labormon evaluate-text FILE.csv`); docs/detectors.md has the figures.
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

from detectors.textrules import rule_features
from monitor.logging import get_logger

log = get_logger("labormon.detectors.category")

#: Corpus and model parameters; changing any of them retrains (the cache key has them).
CORPUS_PER_CATEGORY = 800
CORPUS_SEED = 20250115
NGRAMS = (1, 2)
C = 10.0
#: Weight of one simulated summary against one real message.
SIMULATED_WEIGHT = 0.2
#: A dispute category less likely than this falls back to `other`.
OTHER_THRESHOLD = 0.35
MODEL_VERSION = 3
REAL_TEXT = Path(__file__).resolve().parent / "data" / "real_petitions.csv"
CATEGORIES = ("wage_arrears", "social_insurance", "layoff", "contract", "injury", "other")

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

    real = hashlib.sha256(REAL_TEXT.read_bytes()).hexdigest() if REAL_TEXT.is_file() else ""
    from detectors.textrules import CUES

    material = json.dumps(
        {
            "real": real,
            "cues": CUES,
            "simulated_weight": SIMULATED_WEIGHT,
            "other_threshold": OTHER_THRESHOLD,
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


def _rule_matrix(texts: Any) -> Any:
    from scipy.sparse import csr_matrix

    return csr_matrix(np.array([rule_features(str(t)) for t in texts], dtype=float))


def fit_pipeline(
    texts: list[str], labels: list[str], sample_weight: list[float] | None = None
) -> Any:
    """TF-IDF of character n-grams and the rule cues side by side, then a multinomial
    logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipeline = Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        (
                            "ngrams",
                            TfidfVectorizer(
                                analyzer="char", ngram_range=NGRAMS, sublinear_tf=True, min_df=2
                            ),
                        ),
                        ("rules", FunctionTransformer(_rule_matrix, accept_sparse=True)),
                    ]
                ),
            ),
            ("linear", LogisticRegression(C=C, max_iter=5000)),
        ]
    )
    pipeline.fit(texts, labels, linear__sample_weight=sample_weight)
    return pipeline


def read_labelled(path: Path) -> list[dict[str, str]]:
    """A labelled CSV (columns `text` and `category`; `date`, `source`, `message_id`
    optional). Raises ValueError naming the row and field of a bad line."""
    import csv

    rows: list[dict[str, str]] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"text", "category"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            category = (row.get("category") or "").strip()
            if category not in CATEGORIES:
                raise ValueError(
                    f"{path}:{line}: category: {category!r} is not one of {', '.join(CATEGORIES)}"
                )
            rows.append({k: (v or "") for k, v in row.items() if k is not None})
    return rows


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
    #: Columns after the n-grams that hold the rule cues (0: none).
    n_rules: int = 0
    #: A dispute category less likely than this is `other` (0: plain argmax).
    other_threshold: float = 0.0

    def __post_init__(self) -> None:
        # The rule cues' weights as their own contiguous block (a product per call).
        self._rule_coef = np.ascontiguousarray(self.coef[:, len(self.idf) :])

    @classmethod
    def from_pipeline(cls, pipeline: Any, other_threshold: float = 0.0) -> CategoryModel:
        first, linear = pipeline[0], pipeline[-1]
        if hasattr(first, "transformer_list"):
            vectorizer = dict(first.transformer_list)["ngrams"]
            n_rules = linear.coef_.shape[1] - len(vectorizer.vocabulary_)
        else:
            vectorizer, n_rules = first, 0
        return cls(
            vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
            idf=np.asarray(vectorizer.idf_, dtype=float),
            coef=np.asarray(linear.coef_, dtype=float),
            intercept=np.asarray(linear.intercept_, dtype=float),
            classes=[str(c) for c in linear.classes_],
            ngram_range=(int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1])),
            lowercase=bool(vectorizer.lowercase),
            n_rules=int(n_rules),
            other_threshold=float(other_threshold),
        )

    @property
    def size_bytes(self) -> int:
        """What the model holds in memory, roughly (weights, idf and the n-gram table)."""
        terms = sum(len(t.encode()) + 60 for t in self.vocabulary)
        return int(self.coef.nbytes + self.idf.nbytes + self.intercept.nbytes + terms)

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
        result = self.intercept.copy()
        if counts:
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))
            values = tf * self.idf[cols]
            values /= np.sqrt(values @ values)
            result += self.coef[:, cols] @ values
        if self.n_rules:
            result += self._rule_coef @ np.asarray(rule_features(text))
        return result

    def probabilities(self, text: str) -> dict[str, float]:
        """The calibrated probability of each category (softmax of the scores)."""
        scores = self.scores(text)
        exp = np.exp(scores - scores.max())
        return dict(zip(self.classes, (exp / exp.sum()).tolist(), strict=True))

    def predict(self, text: str) -> str:
        if not text or not text.strip():
            return "other"
        scores = self.scores(text)
        if len(self.classes) == 2:  # binary models keep one row of weights
            return self.classes[int(scores[0] > 0)]
        best = int(np.argmax(scores))
        if self.other_threshold > 0 and self.classes[best] != "other" and "other" in self.classes:
            exp = np.exp(scores - scores[best])
            if 1.0 / exp.sum() < self.other_threshold:
                return "other"
        return self.classes[best]


_lock = threading.Lock()
_model: CategoryModel | None = None


def training_set(
    real_rows: list[dict[str, str]] | None = None, fold: str = "all"
) -> tuple[list[str], list[str], list[float]]:
    """Real messages (weight 1) and the simulator's summaries (weight SIMULATED_WEIGHT)."""
    from monitor.simulator.text import training_corpus

    if real_rows is None:
        real_rows = read_labelled(REAL_TEXT) if REAL_TEXT.is_file() else []
    sim_texts, sim_labels = training_corpus(CORPUS_PER_CATEGORY, CORPUS_SEED, fold=fold)  # type: ignore[arg-type]
    texts = [r["text"] for r in real_rows] + sim_texts
    labels = [r["category"] for r in real_rows] + sim_labels
    weights = [1.0] * len(real_rows) + [SIMULATED_WEIGHT] * len(sim_texts)
    return texts, labels, weights


def _train_default() -> Any:
    return fit_pipeline(*training_set())


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
            n_rules=np.array(model.n_rules, dtype=np.int64),
            other_threshold=np.array(model.other_threshold, dtype=float),
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
            n_rules=int(data["n_rules"]) if "n_rules" in data else 0,
            other_threshold=float(data["other_threshold"]) if "other_threshold" in data else 0.0,
        )
    if model.coef.shape[1] != len(terms) + model.n_rules or len(model.idf) != len(terms):
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
    model = CategoryModel.from_pipeline(_train_default(), OTHER_THRESHOLD)
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
    """Accuracy on the simulator's held-out phrasings: trained (as the shipped model is, on
    the real messages too) without them, tested only on them (another seed)."""
    from sklearn.metrics import accuracy_score, f1_score

    from monitor.simulator.text import training_corpus

    # The shipped configuration: the real messages and the simulator's training fold.
    real_rows = read_labelled(REAL_TEXT) if REAL_TEXT.is_file() else []
    sim_texts, sim_labels = training_corpus(per_category_train, CORPUS_SEED, fold="train")
    texts = [r["text"] for r in real_rows] + sim_texts
    labels = [r["category"] for r in real_rows] + sim_labels
    weights = [1.0] * len(real_rows) + [SIMULATED_WEIGHT] * len(sim_texts)
    model = CategoryModel.from_pipeline(fit_pipeline(texts, labels, weights), OTHER_THRESHOLD)
    test_texts, test_labels = training_corpus(per_category_test, CORPUS_SEED + 1, fold="heldout")
    predicted = [model.predict(t) for t in test_texts]
    classes = sorted(set(test_labels))
    per_class = f1_score(test_labels, predicted, labels=classes, average=None)
    return ClassifierReport(
        macro_f1=float(f1_score(test_labels, predicted, average="macro")),
        accuracy=float(accuracy_score(test_labels, predicted)),
        per_class_f1={c: round(float(v), 4) for c, v in zip(classes, per_class, strict=True)},
        train_size=len(sim_texts),
        test_size=len(test_texts),
    )


# --------------------------------------------------------------------------- real text

#: Real messages from this date on are held out of training in `evaluate_real()`: the
#: model is trained on the earlier ones (and the simulator) and tested on the later.
HOLD_OUT_FROM = "2019-01-01"


@dataclass(frozen=True)
class TextEvaluation:
    """Figures of a classifier on a labelled set."""

    accuracy: float
    macro_f1: float
    #: category -> {"precision", "recall", "f1", "support"}
    per_class: dict[str, dict[str, float]]
    labels: list[str]
    #: rows: true category (in `labels` order), columns: predicted
    confusion: list[list[int]]
    test_size: int
    train_real: int
    note: str = ""

    def format(self) -> str:
        """The figures as printed by `labormon evaluate-text`."""
        lines = [
            f"messages: {self.test_size}   accuracy: {self.accuracy:.3f}   "
            f"macro-F1: {self.macro_f1:.3f}",
        ]
        if self.note:
            lines.append(self.note)
        lines.append("")
        lines.append(f"{'category':<18}{'precision':>10}{'recall':>8}{'f1':>8}{'n':>6}")
        for label in self.labels:
            m = self.per_class[label]
            lines.append(
                f"{label:<18}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
                f"{int(m['support']):>6}"
            )
        lines.append("")
        short = [label[:8] for label in self.labels]
        lines.append("confusion (rows: true, columns: predicted)")
        lines.append(" " * 18 + "".join(f"{s:>10}" for s in short))
        for label, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:<18}" + "".join(f"{v:>10}" for v in row))
        return "\n".join(lines)


def score_predictions(
    truth: list[str], predicted: list[str], *, train_real: int = 0, note: str = ""
) -> TextEvaluation:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = [c for c in CATEGORIES if c in set(truth) | set(predicted)]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    per_class = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(n),
        }
        for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
    }
    return TextEvaluation(
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        per_class=per_class,
        labels=labels,
        confusion=confusion_matrix(truth, predicted, labels=labels).tolist(),
        test_size=len(truth),
        train_real=train_real,
        note=note,
    )


def model_trained_on(real_rows: list[dict[str, str]], *, simulated: bool = True) -> CategoryModel:
    """A model like the default one, trained on these real rows (and the simulator)."""
    if simulated:
        texts, labels, weights = training_set(real_rows)
    else:
        texts = [r["text"] for r in real_rows]
        labels = [r["category"] for r in real_rows]
        weights = [1.0] * len(real_rows)
    return CategoryModel.from_pipeline(fit_pipeline(texts, labels, weights), OTHER_THRESHOLD)


def simulator_only_model() -> CategoryModel:
    """What the classifier was before real text: the simulator's summaries alone."""
    return model_trained_on([], simulated=True)


def evaluate_text(
    path: Path, *, hold_out_from: str | None = None, model: CategoryModel | None = None
) -> TextEvaluation:
    """Figures on any labelled CSV. With `hold_out_from` (an ISO date), only the rows of
    that day and later are tested, by a model trained on the shipped real messages
    dated before it (and never on a message of the file being tested) plus the
    simulator: held out by time. Without it the default model is used, and the note
    says how many of the file's messages it was trained on."""
    rows = read_labelled(path)
    note = ""
    train_real = 0
    if hold_out_from is not None:
        tested = [r for r in rows if (r.get("date") or "") >= hold_out_from]
        if not tested:
            raise ValueError(f"{path}: no row dated {hold_out_from} or later (column date)")
        tested_ids = {r.get("message_id") for r in tested if r.get("message_id")}
        tested_texts = {r["text"] for r in tested}
        shipped = read_labelled(REAL_TEXT) if REAL_TEXT.is_file() else []
        train = [
            r
            for r in shipped
            if (r.get("date") or "9999") < hold_out_from
            and r.get("message_id") not in tested_ids
            and r["text"] not in tested_texts
        ]
        model = model_trained_on(train)
        train_real = len(train)
        note = (
            f"held out by time: tested on {len(tested)} messages dated {hold_out_from} or "
            f"later; trained on {train_real} real messages dated before it and the simulator"
        )
        rows = tested
    elif model is None:
        model = default_model()
        shipped = read_labelled(REAL_TEXT) if REAL_TEXT.is_file() else []
        seen = {r["text"] for r in shipped}
        overlap = sum(1 for r in rows if r["text"] in seen)
        if overlap:
            note = (
                f"note: {overlap} of these messages are in the model's training set; "
                "use --hold-out-from DATE for held-out figures"
            )
    truth = [r["category"] for r in rows]
    predicted = [model.predict(r["text"]) for r in rows]
    return score_predictions(truth, predicted, train_real=train_real, note=note)


def evaluate_real(hold_out_from: str = HOLD_OUT_FROM) -> TextEvaluation:
    """The shipped real messages, held out by time (see `evaluate_text`)."""
    return evaluate_text(REAL_TEXT, hold_out_from=hold_out_from)

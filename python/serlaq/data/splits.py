"""Seeded train/val/test splits: stratified (the paper's protocol) or speaker-independent.

Stratified: the test and validation sizes are `ceil(fraction * n)` (sklearn's rounding
for `train_test_split(test_size=...)`; EMODB's 535 clips give 427/54/54), shared among
the classes in proportion to their sizes (largest remainder, ties broken by the seed);
within a class the clips are drawn by a seeded permutation. Every class keeps at least
one training clip, and every class with a clip to spare for each split gets at least one
validation and one test clip: a class the proportional share rounds to 0 takes one from the
class with the largest share (a class of 3 clips is then 1/1/1). This moves clips only when
a class would otherwise be missing from a split, so a split in which every class is already
present is the one earlier versions drew; when no class has a clip to give (fewer test
clips than classes), one warning names the classes missing from the split.

Speaker-independent: whole speakers are held out. Speakers are shuffled by the seed and
`round(fraction * n_speakers)` of them (at least one each) go to test and to
validation; the rest train. Stratification is then impossible by construction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from serlaq.errors import DataError

log = logging.getLogger("serlaq.data")

Split = tuple[np.ndarray, np.ndarray, np.ndarray]


def split_indices(
    labels: Sequence[str] | np.ndarray,
    speakers: Sequence[str] | np.ndarray | None = None,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    speaker_independent: bool = False,
) -> Split:
    """(train, val, test): sorted int64 index arrays that partition range(len(labels))."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    f_train, f_val, f_test = _check_fractions(fractions)
    if n == 0:
        raise DataError("split: no clips to split")
    rng = np.random.default_rng(seed)
    if speaker_independent:
        if speakers is None:
            raise DataError("split: speaker_independent needs the clips' speaker ids")
        speakers = np.asarray(speakers)
        if speakers.shape[0] != n:
            raise DataError(f"split: {speakers.shape[0]} speaker ids for {n} clips")
        return _by_speaker(labels, speakers, rng, f_val, f_test)
    return _stratified(labels, rng, f_val, f_test, every_class=True)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise DataError(f"split.fractions: expected 3 numbers (train, val, test), got {list(fractions)}")
    f = tuple(float(x) for x in fractions)
    if any(x < 0 for x in f) or f[0] <= 0 or not math.isclose(sum(f), 1.0, abs_tol=1e-6):
        raise DataError(f"split.fractions: need train > 0, val >= 0, test >= 0 summing to 1, got {list(f)}")
    return f  # type: ignore[return-value]


def _quotas(counts: np.ndarray, total: int, rng: np.random.Generator, cap: np.ndarray) -> np.ndarray:
    """Split `total` among classes in proportion to `counts`, never above `cap`."""
    exact = counts * total / counts.sum()
    q = np.minimum(np.floor(exact).astype(np.int64), cap)
    remainder = exact - q
    tiebreak = rng.permutation(len(counts))  # seeded, so ties do not favour class order
    order = sorted(range(len(counts)), key=lambda k: (-remainder[k], tiebreak[k]))
    short = total - int(q.sum())
    while short > 0:
        placed = False
        for k in order:
            if short == 0:
                break
            if q[k] < cap[k]:
                q[k] += 1
                short -= 1
                placed = True
        if not placed:
            break
    return q


def _at_least_one(q: np.ndarray, counts: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """`q` with one clip moved to each class it left at 0 (and that can spare one, `cap`)
    from the class with the largest share above 1 (ties: the larger class, then class
    order). Draws nothing from the RNG, so a `q` without a 0 is returned unchanged and the
    split stays the one drawn before this rule existed."""
    q = q.copy()
    for k in np.flatnonzero((q == 0) & (cap > 0)):
        donors = [j for j in range(len(q)) if q[j] > 1]
        if not donors:
            break  # fewer clips in the split than classes: warned about by the caller
        donor = max(donors, key=lambda j: (q[j], counts[j], -j))
        q[donor] -= 1
        q[k] += 1
    return q


def _warn_missing(classes: np.ndarray, q: np.ndarray, name: str) -> None:
    missing = [str(c) for c, n in zip(classes, q, strict=True) if n == 0]
    if missing:
        log.warning(
            "split: no %s clip for class(es) %s: the split has fewer %s clips than classes; "
            "%s scores leave them out (a larger corpus or %s fraction fixes it)",
            name, ", ".join(missing), name, name, name,
        )


def _stratified(
    labels: np.ndarray, rng: np.random.Generator, f_val: float, f_test: float, every_class: bool = False
) -> Split:
    """`every_class`: give each class a val and a test clip (`_at_least_one`); LOSO's
    validation draws keep the plain proportional rule (their folds stay as published)."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n = labels.shape[0]
    needed = 1 + (f_val > 0) + (f_test > 0)
    small = [(str(c), int(k)) for c, k in zip(classes, counts, strict=True) if k < needed]
    if small:
        listing = ", ".join(f"{c!r} has {k}" for c, k in small)
        raise DataError(
            f"split: too few clips to stratify ({listing}); a train/val/test split needs at least {needed} per class"
        )
    n_test = math.ceil(f_test * n) if f_test > 0 else 0
    n_val = math.ceil(f_val * n) if f_val > 0 else 0
    if n_test + n_val > n - len(classes):
        raise DataError(f"split: {n} clips are too few for val {f_val} and test {f_test} with {len(classes)} classes")
    q_test = _quotas(counts, n_test, rng, counts - 1)
    if every_class and n_test:
        # a class needs a clip for val too (when val is drawn) and one for train
        q_test = _at_least_one(q_test, counts, counts - 1 - (n_val > 0))
        _warn_missing(classes, q_test, "test")
    q_val = _quotas(counts, n_val, rng, counts - 1 - q_test)
    if every_class and n_val:
        q_val = _at_least_one(q_val, counts, counts - 1 - q_test)
        _warn_missing(classes, q_val, "val")

    train, val, test = [], [], []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        members = members[rng.permutation(members.shape[0])]
        test.append(members[: q_test[k]])
        val.append(members[q_test[k] : q_test[k] + q_val[k]])
        train.append(members[q_test[k] + q_val[k] :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))  # type: ignore[return-value]


def _by_speaker(labels: np.ndarray, speakers: np.ndarray, rng: np.random.Generator, f_val: float, f_test: float) -> Split:
    names = np.unique(speakers)
    needed = 1 + (f_val > 0) + (f_test > 0)
    if names.shape[0] < needed:
        shown = ", ".join(repr(str(s)) for s in names[:5])
        raise DataError(
            f"split: a speaker-independent split needs at least {needed} speakers, the corpus has "
            f"{names.shape[0]} ({shown})"
        )
    order = names[rng.permutation(names.shape[0])]
    n_test = max(1, round(f_test * len(names))) if f_test > 0 else 0
    n_val = max(1, round(f_val * len(names))) if f_val > 0 else 0
    while n_test + n_val > len(names) - 1:  # keep at least one training speaker
        if n_val >= n_test and n_val > 1:
            n_val -= 1
        else:
            n_test -= 1
    test_spk, val_spk = order[:n_test], order[n_test : n_test + n_val]
    test = np.flatnonzero(np.isin(speakers, test_spk))
    val = np.flatnonzero(np.isin(speakers, val_spk))
    train = np.flatnonzero(~np.isin(speakers, np.concatenate([test_spk, val_spk])))
    missing = sorted(set(labels.tolist()) - set(labels[train].tolist()))
    if missing:
        raise DataError(f"split: class(es) {missing} have no clips from the training speakers; use a stratified split")
    return train.astype(np.int64), val.astype(np.int64), test.astype(np.int64)


def loso_folds(
    labels: Sequence[str] | np.ndarray,
    speakers: Sequence[str] | np.ndarray,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> list[tuple[str, Split]]:
    """Leave-one-speaker-out: one (speaker, (train, val, test)) per speaker, in sorted speaker order.

    Test = every clip of that speaker; val = a seeded, stratified `val_fraction` of the other
    speakers' clips (the split's stratified rule, seed `seed + fold`); train = the rest.
    """
    labels, speakers = np.asarray(labels), np.asarray(speakers)
    if labels.shape[0] != speakers.shape[0]:
        raise DataError(f"loso: {speakers.shape[0]} speaker ids for {labels.shape[0]} clips")
    names = np.unique(speakers)
    if names.shape[0] < 2:
        raise DataError(f"loso: needs at least 2 speakers, the corpus has {names.shape[0]}")
    folds = []
    for k, name in enumerate(names):
        test = np.flatnonzero(speakers == name)
        rest = np.flatnonzero(speakers != name)
        tr, va, _ = _stratified(labels[rest], np.random.default_rng(seed + k), val_fraction, 0.0)
        folds.append((str(name), (rest[tr], rest[va], test.astype(np.int64))))
    return folds

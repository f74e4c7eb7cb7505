"""Benchmark ``monitor.queries`` against ART's extraction attacks, paced and split over API keys.

Two victims (scikit-learn, bundled data): breast cancer (30 features, logistic regression) and digits
(64 features, an MLP). Each attack's queries go through ``InferenceLogger`` as five keys taking turns,
``--per-key`` queries per key per hour (natural clients send a median of 100), beside 24 natural clients
querying the held-out split at lognormal volumes. The attacker's pool is independent Gaussian noise at
twice each feature's spread, clipped to its range (Knockoff- and Copycat-style: not the victim's data);
``marginal`` is Knockoff's random strategy on noise at once each feature's spread (redteam6b: every feature
typical, only the features' correlations broken).
The gate runs as the shipped DAGs run it, with the default policy and the training split as reference
(``--reference profile``: its profile, marginals only, as the DAGs' default DP profile is; ADR 0066):
``model_monitoring`` every hour (volume and PRADA on the window alone, OOD evidence cumulative across its
runs) and ``model_query_watch`` every 5 minutes (OOD evidence cumulative across its runs, nothing per
window); each DAG keeps its own state, and both measure against the training reference. Reported per attack
and DAG (and for both together): the attack-query count when the first key is flagged, the scores then of
surrogates trained, as the attack trains them, on exactly those queries (median of ``--seeds``
initialisations: agreement with the victim, the same on a class-balanced evaluation, Cohen's kappa), and
the natural clients flagged. Per attack, the attack-query counts at which the median surrogate first
reaches, and from which it stays at, each target: ``--target`` (0.8) plain and class-balanced, and the
same beyond what a thief gets without extracting (the victim's majority class; on two classes the rule
"standardised feature sum above 0", its sign fixed by one query, which agrees 0.88 with the breast-cancer
victim — there 0.8 agreement is no measure of extraction, ADR 0054). Then, per victim, a population of
``--naturals`` natural clients alone over ``--natural-hours`` hours: how many either DAG flags (≤ 1 % is the
acceptance); beside them ``--newcomers`` natural keys that appear at random times and send a few queries each
(lognormal, median 2, within 10 minutes: a natural key whose first query is out of distribution is among
them), counted apart and drawn from their own generator so that the other outputs stay comparable.

    nice .venv/bin/python benchmarks/extraction.py [--quick] [--seeds 5] [--skip-attacks]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mlgate.core.policy import load_policy
from mlgate.core.results import Subject
from mlgate.gates.monitor.drift import ReferenceProfile, profile_from_sample
from mlgate.gates.monitor.extraction import ExtractionState, space_from_profile, space_from_sample, space_record
from mlgate.gates.monitor.inference_log import InferenceLogger, read_window
from mlgate.gates.monitor.queries import check_queries

START = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = 5
# the shipped DAGs' use of the gate, both with cumulative OOD evidence: (minutes between runs, per-window tests)
DAGS = {"model_monitoring": (60, True), "model_query_watch": (5, False)}


def victims(seed: int):
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPClassifier((64,), max_iter=500, random_state=seed)
    for name, (x, y), model in (
        ("tabular", load_breast_cancer(return_X_y=True), make_pipeline(StandardScaler(), LogisticRegression())),
        ("digits", load_digits(return_X_y=True), make_pipeline(StandardScaler(), mlp)),
    ):
        x_train, x_test, y_train, _ = train_test_split(x.astype(np.float32), y, test_size=0.4, random_state=seed)
        yield name, model.fit(x_train, y_train), x_train, x_test


def surrogate(n_features: int, n_classes: int, low: np.ndarray, high: np.ndarray, seed: int = 0):
    """A small MLP that scales inputs by the feature ranges the attacker knows."""
    import torch
    from art.estimators.classification import PyTorchClassifier

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n_features, 64), torch.nn.ReLU(), torch.nn.Linear(64, n_classes))
    return PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(net.parameters(), 1e-2),
                             input_shape=(n_features,), nb_classes=n_classes,
                             preprocessing=((low + high) / 2, np.maximum((high - low) / 2, 1e-6)))


def agreement(model, thief, x_test: np.ndarray) -> float:
    return float(np.mean(thief.predict(x_test.astype(np.float32)).argmax(1) == model.predict(x_test)))


def scores(victim: np.ndarray, thief: np.ndarray) -> dict[str, float]:
    """Agreement, the same on a class-balanced evaluation (the mean over the victim's classes of the share the
    thief labels alike) and Cohen's kappa (agreement above what two labellings with these class shares reach
    by chance): on a victim whose majority class or a trivial rule agrees often, plain agreement is no measure
    of extraction."""
    plain = float(np.mean(victim == thief))
    chance = sum(float(np.mean(victim == k) * np.mean(thief == k)) for k in np.union1d(victim, thief))
    return {"agreement": plain,
            "balanced": float(np.mean([np.mean(thief[victim == k] == k) for k in np.unique(victim)])),
            "kappa": (plain - chance) / (1 - chance) if chance < 1 else 0.0}


def baselines(model, x_train: np.ndarray, x_test: np.ndarray) -> dict[str, dict[str, float]]:
    """``scores`` of labellings a thief has without extracting: the victim's majority class and (two classes)
    the rule 'the sum of the features, standardised by the mean and spread the attacker knows, is above 0',
    its sign fixed by one query (on breast cancer it agrees with the victim 0.88)."""
    victim = model.predict(x_test)
    out = {"majority": scores(victim, np.full_like(victim, np.bincount(victim).argmax()))}
    if len(model.classes_) == 2:
        rule = (((x_test - x_train.mean(axis=0)) / x_train.std(axis=0)).sum(axis=1) > 0).astype(victim.dtype)
        out["one_query_rule"] = max(scores(victim, rule), scores(victim, 1 - rule), key=lambda r: r["agreement"])
    return out


def targets(target: float, trivial: dict[str, dict[str, float]]) -> dict[str, float]:
    """The agreement (plain, class-balanced) a surrogate must reach: ``target``, and beyond what a trivial
    labelling reaches (the larger of the two; reaching means exceeding the trivial labelling)."""
    out = {"agreement": target, "balanced": target}
    for k in ("agreement", "balanced"):
        out[f"{k}_beyond_trivial"] = max(target, max(np.nextafter(t[k], 1) for t in trivial.values()))
    return out


def query_space(x_train: np.ndarray, columns: list[str], quantile: float, reference: str):
    """The gate's query space of the training split: the sample itself; (``profile``) its 100-bin profile, which
    keeps no correlations — the kind of reference the DAGs' default DP profile is (here exact, without its noise);
    or (``attested``) that profile carrying the split's query space through JSON, as the default policy's release
    publishes it (ADR 0067)."""
    frame = pd.DataFrame(x_train, columns=columns)
    if reference == "sample":
        return space_from_sample(frame, columns, quantile)
    profile = profile_from_sample(frame)
    if reference == "attested":
        profile = ReferenceProfile.from_dict(json.loads(json.dumps(
            {**profile.to_dict(), "query_space": space_record(frame, columns)})))
    return space_from_profile(profile, columns, quantile)


def run(name, model, x_train, x_test, attack_name, args, rng) -> dict:
    from art.attacks.extraction import CopycatCNN, KnockoffNets
    from art.estimators.classification import BlackBoxClassifier

    n_classes, n_features = len(model.classes_), x_train.shape[1]
    columns = [f"f{i:02d}" for i in range(n_features)]
    low, high = x_train.min(axis=0), x_train.max(axis=0)
    # the attacker knows each feature's mean and spread, not the data: independent noise at twice the spread, or
    # (the marginal thief, redteam6b) at once the spread: each feature typical, the features' correlations broken
    spread = 1 if attack_name == "marginal" else 2
    pool = np.clip(rng.normal(x_train.mean(axis=0), spread * x_train.std(axis=0), (args.stolen * 2, n_features)),
                   low, high).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        logger = InferenceLogger(log)
        sent: list[np.ndarray] = []
        sent_at: list[datetime] = []

        def victim(x: np.ndarray) -> np.ndarray:
            proba = model.predict_proba(x)
            for row, p in zip(x, proba, strict=True):
                i = len(sent)
                sent.append(row)
                hour, key = i // (KEYS * args.per_key), i % KEYS
                at = START + timedelta(hours=hour, seconds=int(3599 * ((i % (KEYS * args.per_key)) + 0.5)
                                                              / (KEYS * args.per_key)))
                sent_at.append(at)
                logger.log(f"key-{key}", dict(zip(columns, map(float, row), strict=True)), int(p.argmax()),
                           float(p.max()), timestamp=at)
            return proba

        black_box = BlackBoxClassifier(victim, (n_features,), n_classes, clip_values=None)
        thief = surrogate(n_features, n_classes, low, high)
        common = {"batch_size_fit": 32, "batch_size_query": 32, "nb_epochs": 30, "nb_stolen": args.stolen}
        if attack_name in ("knockoff-random", "marginal"):
            KnockoffNets(black_box, **common, verbose=False).extract(pool, thieved_classifier=thief)
        elif attack_name == "knockoff-adaptive":
            KnockoffNets(black_box, **{**common, "batch_size_query": 1}, sampling_strategy="adaptive",
                         verbose=False).extract(pool, rng.integers(0, n_classes, len(pool)), thieved_classifier=thief)
        else:
            CopycatCNN(black_box, **common).extract(pool, thieved_classifier=thief)
        final = agreement(model, thief, x_test)
        hours = (len(sent) - 1) // (KEYS * args.per_key) + 1
        for hour in range(hours):  # natural traffic beside the attack
            for client in range(24):
                volume = int(rng.lognormal(np.log(100), 0.5))
                for j, row in enumerate(x_test[rng.integers(0, len(x_test), volume)]):
                    p = model.predict_proba(row[None])[0]
                    logger.log(f"user-{client}", dict(zip(columns, map(float, row), strict=True)), int(p.argmax()),
                               float(p.max()), timestamp=START + timedelta(hours=hour, seconds=int(3599 * j / volume)))
        logger.close()
        policy = load_policy(Path(__file__).parents[1] / "policies" / "default.yaml")
        config = policy.section("monitor.queries")
        space = query_space(x_train, columns, config.ood_quantile, args.reference)
        logged = read_window(log, START, START + timedelta(hours=hours))  # read once, sliced per window
        cadences: dict = {}
        for dag, (minutes, per_window) in DAGS.items():
            state, first, naturals = ExtractionState(), None, {}
            for w, window in enumerate(windows(logged, minutes, hours)):
                if window.empty:
                    continue
                result = check_queries(window, config, policy.digest, subject=Subject("dataset", f"w-{w}", "x"),
                                       space=space, state=state, per_window=per_window)
                for finding in result.findings:
                    if finding.location.startswith("client user-"):
                        naturals.setdefault(finding.location, finding.id + (
                            " (pooled with keys)" if "pooled" in finding.message else ""))
                if first is None and any(c.startswith("key-") for c in result.metrics["flagged_clients"]):
                    first = (w + 1) * minutes  # the run at the window's end flags it
            cadences[dag] = {"flagged_minute": first, "naturals": naturals}
        cadences["both"] = {"flagged_minute": min((c["flagged_minute"] for c in cadences.values()
                                                   if c["flagged_minute"] is not None), default=None),
                            "naturals": {k: v for c in cadences.values() for k, v in c["naturals"].items()}}
        for c in cadences.values():
            first = c["flagged_minute"]
            c["queries_at_flag"] = None if first is None else \
                sum(t < START + timedelta(minutes=first) for t in sent_at)
            c["at_flag"] = c["queries_at_flag"] and surrogate_scores(
                model, sent[:c["queries_at_flag"]], x_test, low, high, args.seeds)
            c["naturals_flagged"], c["natural_findings"] = len(c["naturals"]), sorted(set(c.pop("naturals").values()))
        to = queries_to(model, sent, x_test, low, high, args.seeds,
                        targets(args.target, baselines(model, x_train, x_test)))
    return {"victim": name, "attack": attack_name, "queries": len(sent), "hours": hours, "final_agreement": final,
            "naturals": 24, "cadences": cadences, "queries_to": to}


def windows(log: pd.DataFrame, minutes: int, hours: float):
    """The log's consecutive windows of ``minutes``, as ``read_window`` would return them one by one."""
    for w in range(int(hours * 60 // minutes)):
        start = START + timedelta(minutes=w * minutes)
        yield log[(log.timestamp >= start) & (log.timestamp < start + timedelta(minutes=minutes))]


def surrogate_scores(model, queries: list, x_test: np.ndarray, low: np.ndarray, high: np.ndarray,
                     seeds: int) -> dict[str, float]:
    """Scores (``scores``) of surrogates trained, as the attack trains them, on exactly ``queries``: the median
    over ``seeds`` initialisations (one surrogate's agreement on a few queries swings by 0.4 with its seed)."""
    n_classes, x_early = len(model.classes_), np.asarray(queries, dtype=np.float32)
    victim, runs = model.predict(x_test), []
    for seed in range(seeds):
        early = surrogate(len(low), n_classes, low, high, seed)
        early.fit(x_early, np.eye(n_classes)[model.predict(x_early)], batch_size=32, nb_epochs=30, verbose=False)
        runs.append(scores(victim, early.predict(x_test.astype(np.float32)).argmax(1)))
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def queries_to(model, sent: list, x_test: np.ndarray, low: np.ndarray, high: np.ndarray, seeds: int,
               reach: dict[str, float]) -> dict[str, dict[str, int | None]]:
    """Per target in ``reach`` (``targets``), on a grid of attack-query counts: the fewest at which the median
    surrogate first reaches it, and the fewest from which it stays there (None: not within the attack's
    queries). Surrogates on a few queries swing: one may reach a target and fall below it later."""
    grid = [n for n in (*range(1, 13), 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 300, 500, 1000)
            if n <= len(sent)]
    first: dict[str, int | None] = dict.fromkeys(reach)
    stays: dict[str, int | None] = dict.fromkeys(reach)
    for n in grid:
        s = surrogate_scores(model, sent[:n], x_test, low, high, seeds)
        for k, level in reach.items():
            reached = s[k.removesuffix("_beyond_trivial")] >= level
            first[k] = first[k] or (n if reached else None)
            stays[k] = (stays[k] or n) if reached else None
    return {"first reaches": first, "stays at": stays}


def natural_population(name, model, x_train, x_test, args, rng) -> dict:
    """Natural clients alone, many of them: how many the gate flags over ``args.natural_hours`` hours at each
    cadence (windows built directly, as ``read_window`` returns them)."""
    policy = load_policy(Path(__file__).parents[1] / "policies" / "default.yaml")
    config = policy.section("monitor.queries")
    columns = [f"f{i:02d}" for i in range(x_train.shape[1])]
    space = query_space(x_train, columns, config.ood_quantile, args.reference)
    rows = []
    for client in range(args.naturals):
        rate = rng.lognormal(np.log(100), 0.5)  # queries an hour, each client its own
        count = rng.poisson(rate * args.natural_hours)
        at = np.sort(rng.uniform(0, args.natural_hours * 3600, count))
        for t, row in zip(at, x_test[rng.integers(0, len(x_test), count)], strict=True):
            rows.append((START + timedelta(seconds=float(t)), f"user-{client}", *row))
    fresh = np.random.default_rng(len(columns))  # the newcomers' own draws
    for client in range(args.newcomers):
        count = max(1, int(np.ceil(fresh.lognormal(np.log(2), 0.8))))
        at = fresh.uniform(0, args.natural_hours * 3600 - 600) + np.sort(fresh.uniform(0, 600, count))
        for t, row in zip(at, x_test[fresh.integers(0, len(x_test), count)], strict=True):
            rows.append((START + timedelta(seconds=float(t)), f"new-{client}", *row))
    log = pd.DataFrame(rows, columns=["timestamp", "client_id", *columns]).sort_values("timestamp")
    out, why, every, new = {}, {}, {}, {}
    for dag, (minutes, per_window) in DAGS.items():
        state, flagged = ExtractionState(), {}
        for w, window in enumerate(windows(log, minutes, args.natural_hours)):
            if not window.empty:
                for finding in check_queries(window, config, policy.digest, subject=Subject("dataset", f"w-{w}", "x"),
                                             space=space, state=state, per_window=per_window).findings:
                    flagged.setdefault(finding.location, finding.id)
        users = {k: v for k, v in flagged.items() if not k.startswith("client new-")}
        out[dag], why[dag], new[dag] = len(users), sorted(set(users.values())), len(flagged) - len(users)
        every |= users
        new.setdefault("both_ids", set()).update(k for k in flagged if k.startswith("client new-"))
    out["both"], why["both"], new["both"] = len(every), sorted(set(every.values())), len(new.pop("both_ids"))
    return {"victim": name, "clients": args.naturals, "queries": len(log), "flagged": out, "why": why,
            "newcomers": args.newcomers, "newcomers_flagged": new}


def fmt(value: object) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 stolen queries instead of 1,000")
    parser.add_argument("--per-key", type=int, default=8, help="attack queries per key per hour")
    parser.add_argument("--naturals", type=int, default=300, help="natural clients in the population run")
    parser.add_argument("--natural-hours", type=int, default=6)
    parser.add_argument("--newcomers", type=int, default=300, help="natural keys with a few queries each")
    parser.add_argument("--seeds", type=int, default=5, help="surrogates (initialisations) per agreement point")
    parser.add_argument("--target", type=float, default=0.8, help="the agreement the flag must come before")
    parser.add_argument("--skip-attacks", action="store_true", help="natural populations only")
    parser.add_argument("--reference", choices=("sample", "profile", "attested"), default="sample",
                        help="the training reference the gate scores against: the sample, its profile (ADR 0066), "
                             "or its profile with the query space a release publishes (ADR 0067)")
    args = parser.parse_args()
    args.stolen = 300 if args.quick else 1000
    rng = np.random.default_rng(0)
    print("FunctionallyEquivalentExtraction: not run (ART implements it for Keras models only; no TensorFlow)")
    print(f"{KEYS} keys x {args.per_key} queries an hour; " + "; ".join(
        f"{dag}: every {m} min, {'volume + PRADA + ' if w else ''}cumulative OOD" for dag, (m, w) in DAGS.items()))
    print(f"scores: median of {args.seeds} surrogates trained on the attack's first queries; per DAG: q@flag, "
          "agreement / balanced / kappa then, naturals flagged")
    for name, model, x_train, x_test in victims(0):
        trivial = baselines(model, x_train, x_test)
        reach = targets(args.target, trivial)
        print(f"{name}: without extracting, " + "; ".join(f"{k}: agreement {v['agreement']:.3f}, balanced "
              f"{v['balanced']:.3f}, kappa {v['kappa']:.3f}" for k, v in trivial.items()) + "; targets " +
              ", ".join(f"{k} {v:.3f}" for k, v in reach.items()), flush=True)
        for attack in () if args.skip_attacks else ("knockoff-random", "knockoff-adaptive", "copycat", "marginal"):
            try:
                r = run(name, model, x_train, x_test, attack, args, rng)
            except Exception as exc:  # an attack ART cannot finish is reported, not hidden
                print(f"{name:8s} {attack:18s} failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            flag = r["cadences"]["both"]["queries_at_flag"]
            print(f"{r['victim']:8s} {r['attack']:18s} {r['queries']} queries, ART's final {r['final_agreement']:.3f}",
                  flush=True)
            for when, to in r["queries_to"].items():
                print(f"    queries from which the median surrogate {when} each target (flagged before it): " +
                      ", ".join(f"{k} {fmt(v)} ({flag is not None and (v is None or flag < v)})"
                                for k, v in to.items()), flush=True)
            for dag, c in r["cadences"].items():
                at = c["at_flag"] or {}
                print(f"    {dag:17s} q@flag {fmt(c['queries_at_flag']):>4s}  then " + " / ".join(
                    fmt(at.get(k)) for k in ("agreement", "balanced", "kappa")) +
                      f"  naturals {c['naturals_flagged']}/24" +
                      (f" (by {', '.join(c['natural_findings'])})" if c["natural_findings"] else ""), flush=True)
        p = natural_population(name, model, x_train, x_test, args, rng)
        print(f"{name:8s} natural population: {p['clients']} clients, {p['queries']} queries in "
              f"{args.natural_hours} h; flagged " + ", ".join(
                  f"{n}/{p['clients']} {m}" + (f" (by {', '.join(p['why'][m])})" if n else "")
                  for m, n in p["flagged"].items()) + f"; newcomers {p['newcomers']}: flagged " + ", ".join(
                  f"{n}/{p['newcomers']} {m}" for m, n in p["newcomers_flagged"].items()), flush=True)


if __name__ == "__main__":
    main()

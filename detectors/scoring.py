"""The combiner: one risk score 0-100 and a level per point and per county, with reasons.

Per monitoring point:

1. the probability of an incident within 90 days -- from the forecaster when there is
   one, otherwise from an expert formula over the same features (the rules' and
   anomalies' weights, set by judgement from DOMAIN.md);
2. the score: `100 * log(1 + p/p0) / log(1 + 1/p0)` with p0 = 5 %, which spreads the
   low probabilities that make up most of a region (p = 2 % -> 11, 5 % -> 23,
   12 % -> 40, 22 % -> 55, 37 % -> 70, 62 % -> 85);
3. the level from the score thresholds (I >= 85, II >= 70, III >= 55, IV >= 40: a
   level IV point has at least a one-in-eight chance of an incident within 90 days,
   a level I point more than three in five), raised to the rules' floor where a
   published threshold demands it (`rules.py`);
4. the top factors in words: each group of features (arrears, petitions, informants,
   reporting, ...) is set to a quiet enterprise's values and the score recomputed;
   the drop is that group's weight, in score points, and its text says what was seen.

Per county: the mean probability of its points against the region's normal rate (the
forecaster's base rate), a petition surge, and the points that drive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from detectors import evidence, rules, surge
from detectors.base import RANK, Factor, FindingDraft, risk_heading
from detectors.expert import expert_probability
from detectors.features import GROUPS, NAMES, NEUTRAL, Features, compute
from detectors.forecast import Forecaster
from detectors.panel import SOURCE_PETITION, PanelView
from monitor.season import from_day_number

EXPLAINED_GROUPS = (
    "arrears",
    "social_insurance",
    "layoffs",
    "production",
    "reporting",
    "wage_anomaly",
    "petitions",
    "informants",
    "history",
    "gap",
    "season",
    "county",
)
GROUP_COLUMNS = {
    g: np.array([i for i, name in enumerate(NAMES) if GROUPS[i] == g]) for g in EXPLAINED_GROUPS
}
NEUTRAL_ROW = np.array([NEUTRAL.get(name, 0.0) for name in NAMES])


@dataclass(frozen=True)
class ScoringPolicy:
    thresholds: tuple[tuple[str, float], ...] = (
        ("I", 85.0),
        ("II", 70.0),
        ("III", 55.0),
        ("IV", 40.0),
    )
    p0: float = 0.05
    default_base_rate: float = 0.02
    explain_min_score: float = 20.0
    max_factors: int = 5
    surge: surge.SurgePolicy = field(default_factory=surge.SurgePolicy)
    #: An enterprise surge needs at least this many petitions in the window.
    enterprise_surge_min: int = 6

    def threshold(self, level: str) -> float:
        return dict(self.thresholds)[level]


def probability_to_score(p: np.ndarray, p0: float = 0.05) -> np.ndarray:
    p = np.clip(np.nan_to_num(np.asarray(p, dtype=float), nan=0.0), 0.0, 1.0)
    return 100.0 * np.log1p(p / p0) / np.log1p(1.0 / p0)


def levels_of(score: np.ndarray, policy: ScoringPolicy) -> np.ndarray:
    """Level rank per score (0 none .. 4 = I)."""
    rank = np.zeros(len(score), dtype=np.int64)
    for level, threshold in sorted(policy.thresholds, key=lambda t: t[1]):
        rank = np.where(score >= threshold, RANK[level], rank)
    return rank


RANK_LEVEL = {0: None, 1: "IV", 2: "III", 3: "II", 4: "I"}


# --------------------------------------------------------------------------- results


@dataclass
class ScoreTable:
    """Scores of every point and county of a panel as of a day."""

    day: int
    method: str
    point_ids: list[str]
    point_names: list[str]
    point_region: list[str]
    probability: np.ndarray
    score: np.ndarray
    level_rank: np.ndarray
    factors: list[list[Factor]]
    source_ids: list[list[str]]
    counties: list[str]
    county_score: np.ndarray
    county_rank: np.ndarray
    county_factors: list[list[Factor]]
    county_probability: np.ndarray
    surges: list[FindingDraft]
    features: Features
    #: Per county, the ids of the records behind its factors (see `detectors.evidence`).
    county_source_ids: list[list[str]] = field(default_factory=list)

    def level(self, i: int) -> str | None:
        return RANK_LEVEL[int(self.level_rank[i])]

    def county_level(self, j: int) -> str | None:
        return RANK_LEVEL[int(self.county_rank[j])]

    def point_findings(self) -> list[FindingDraft]:
        """An `enterprise_risk` draft for every point (level None where no level)."""
        out = []
        as_of = from_day_number(self.day).isoformat()
        for i, point_id in enumerate(self.point_ids):
            level = self.level(i)
            name = self.point_names[i]
            title = (
                f"{risk_heading(level)}{name}劳资冲突风险{self.score[i]:.0f}分"
                if level
                else f"{name}劳资冲突风险已回落（{self.score[i]:.0f}分）"
            )
            out.append(
                FindingDraft(
                    detector="combiner",
                    kind="enterprise_risk",
                    entity_type="point",
                    entity_id=point_id,
                    region_code=self.point_region[i],
                    score=round(float(self.score[i]), 1),
                    level=level,
                    title=title,
                    factors=self.factors[i],
                    source_ids=self.source_ids[i],
                    point_id=point_id,
                    extra={
                        "enterprise_name": name,
                        "probability_90d": round(float(self.probability[i]), 4),
                        "method": self.method,
                        "as_of": as_of,
                    },
                )
            )
        return out

    def county_findings(self, names: Mapping[str, str] | None = None) -> list[FindingDraft]:
        """One finding per county; `names` (region code -> name) puts the county's name in
        the title that leaders read first."""
        out = []
        for j, code in enumerate(self.counties):
            level = self.county_level(j)
            where = (names or {}).get(code) or f"区县{code}"
            title = (
                f"{risk_heading(level)}{where}劳资冲突风险{self.county_score[j]:.0f}分"
                if level
                else f"{where}劳资冲突风险已回落（{self.county_score[j]:.0f}分）"
            )
            out.append(
                FindingDraft(
                    detector="combiner",
                    kind="county_risk",
                    entity_type="county",
                    entity_id=code,
                    region_code=code,
                    score=round(float(self.county_score[j]), 1),
                    level=level,
                    title=title,
                    factors=self.county_factors[j],
                    source_ids=list(self.county_source_ids[j])
                    if j < len(self.county_source_ids)
                    else [],
                    extra={"mean_probability_90d": round(float(self.county_probability[j]), 4)},
                )
            )
        return out

    def factor_text(self, i: int, limit: int = 3) -> str:
        return "；".join(f.text for f in self.factors[i][:limit])


# --------------------------------------------------------------------------- scoring


def _probability(X: np.ndarray, forecaster: Forecaster | None) -> np.ndarray:
    return forecaster.predict(X) if forecaster is not None else expert_probability(X)


def score(
    view: PanelView,
    forecaster: Forecaster | None = None,
    policy: ScoringPolicy | None = None,
    *,
    features: Features | None = None,
    explain: bool = True,
) -> ScoreTable:
    """Score every point and county of `view`'s panel as of its day."""
    policy = policy or ScoringPolicy()
    panel = view.panel
    f = features if features is not None else compute(view)
    X = f.X
    p = _probability(X, forecaster)
    raw = probability_to_score(p, policy.p0)
    hits = rules.evaluate(f)
    rank = levels_of(raw, policy)
    floor_scores = np.zeros(len(raw))
    for level in ("IV", "III", "II", "I"):
        floor_scores = np.where(
            hits.floor_rank == RANK[level], policy.threshold(level), floor_scores
        )
    final = np.maximum(raw, floor_scores)
    rank = np.maximum(rank, hits.floor_rank)
    factors: list[list[Factor]] = [[] for _ in range(panel.n)]
    sources: list[list[str]] = [[] for _ in range(panel.n)]
    if explain and panel.n:
        chosen = np.nonzero((final >= policy.explain_min_score) | (hits.floor_rank > 0))[0]
        if len(chosen):
            _explain(chosen, X, raw, forecaster, hits, policy, factors)
            evidence.point_sources(view, f, chosen, factors, sources)
    county_codes = panel.counties
    base = forecaster.base_rate if forecaster is not None else policy.default_base_rate
    county_p, county_score, county_rank, county_factors, county_sources, surges = _counties(
        view, p, final, rank, base, policy, sources
    )
    return ScoreTable(
        day=view.day,
        method="forecaster" if forecaster is not None else "rules",
        point_ids=panel.point_ids,
        point_names=panel.names,
        point_region=[panel.counties[c] for c in panel.county],
        probability=p,
        score=np.round(final, 1),
        level_rank=rank,
        factors=factors,
        source_ids=sources,
        counties=county_codes,
        county_score=county_score,
        county_rank=county_rank,
        county_factors=county_factors,
        county_probability=county_p,
        surges=surges,
        features=f,
        county_source_ids=county_sources,
    )


def _explain(
    chosen: np.ndarray,
    X: np.ndarray,
    raw: np.ndarray,
    forecaster: Forecaster | None,
    hits: rules.RuleHits,
    policy: ScoringPolicy,
    factors: list[list[Factor]],
) -> None:
    """Occlusion by feature group: how many score points each group adds."""
    rows = X[chosen]
    base = raw[chosen]
    weights = np.zeros((len(chosen), len(EXPLAINED_GROUPS)))
    for g, group in enumerate(EXPLAINED_GROUPS):
        cols = GROUP_COLUMNS[group]
        quiet = rows.copy()
        quiet[:, cols] = NEUTRAL_ROW[cols]
        weights[:, g] = base - probability_to_score(_probability(quiet, forecaster), policy.p0)
    for k, i in enumerate(chosen.tolist()):
        found: list[Factor] = []
        for g in np.argsort(-weights[k]):
            weight = float(weights[k, g])
            if weight < 1.0:
                break
            text = rules.group_text(EXPLAINED_GROUPS[g], rows[k])
            if text:
                found.append(Factor(EXPLAINED_GROUPS[g], text, weight))
        for rule_factor in rules.floor_factors(hits, i, {f.code for f in found}):
            if rule_factor.text not in {x.text for x in found}:
                found.append(Factor(rule_factor.code, rule_factor.text, max(1.0, raw[i] * 0.1)))
        found.sort(key=lambda x: -x.weight)
        factors[i] = found[: policy.max_factors]


def _counties(
    view: PanelView,
    p: np.ndarray,
    score_: np.ndarray,
    rank: np.ndarray,
    base_rate: float,
    policy: ScoringPolicy,
    point_sources: list[list[str]],
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, list[list[Factor]], list[list[str]], list[FindingDraft]
]:
    panel = view.panel
    k = len(panel.counties)
    size = np.bincount(panel.county, minlength=k).astype(float)
    mean_p = np.bincount(panel.county, weights=p, minlength=k) / np.maximum(size, 1)
    ratio = mean_p / max(base_rate, 1e-6)
    # Twice the normal rate scores 50 (level IV with the default thresholds), four times
    # 75 (II); level I needs about seven times: a whole county at "特别重大" must be rare.
    county_score = np.clip(25.0 + 25.0 * np.log2(np.maximum(ratio, 1e-3)), 0.0, 100.0)
    county_score = np.where(size > 0, county_score, 0.0)
    surges, county_surge = _surges(view, policy)
    county_score = np.where(
        county_surge, np.maximum(county_score, policy.threshold("III")), county_score
    )
    county_rank = levels_of(county_score, policy)
    county_factors: list[list[Factor]] = []
    county_sources: list[list[str]] = []
    surge_text = {d.entity_id: d for d in surges if d.entity_type == "county"}
    order = np.argsort(panel.county, kind="stable")
    bounds = np.searchsorted(panel.county[order], np.arange(k + 1), side="left")
    for j in range(k):
        found: list[Factor] = []
        members = order[bounds[j] : bounds[j + 1]]
        if len(members) and ratio[j] >= 1.2:
            found.append(
                Factor(
                    "county_mean_risk",
                    f"辖区{len(members)}个监测点平均风险为常态的{ratio[j]:.1f}倍",
                    float(county_score[j] - 30.0),
                )
            )
        high = members[rank[members] >= RANK["III"]]
        top = high[np.argsort(-score_[high])][:3]
        if len(high):
            names = "、".join(f"{panel.names[i]}（{score_[i]:.0f}分）" for i in top)
            found.append(
                Factor(
                    "county_high_risk_points",
                    f"较大及以上风险企业{len(high)}家：{names}",
                    10.0 + len(high),
                )
            )
        code = panel.counties[j]
        if code in surge_text:
            found.append(Factor("county_petition_surge", surge_text[code].title, 25.0))
        found.sort(key=lambda x: -x.weight)
        county_factors.append(found[: policy.max_factors])
        # The points that raise the county's mean risk most (only real records of theirs).
        riskiest = members[np.argsort(-p[members], kind="stable")][: evidence.MEAN_RISK_POINTS]
        county_sources.append(
            evidence.county_sources(
                county_factors[-1],
                surge_text[code].source_ids if code in surge_text else [],
                top.tolist(),
                riskiest.tolist(),
                point_sources,
            )
        )
    return (
        mean_p,
        np.round(county_score, 1),
        county_rank,
        county_factors,
        county_sources,
        surges,
    )


def _surges(view: PanelView, policy: ScoringPolicy) -> tuple[list[FindingDraft], np.ndarray]:
    """Petition surges per county (all petitions) and per enterprise (linked ones)."""
    panel = view.panel
    sp = policy.surge
    days = sp.window + sp.baseline
    first = view.day - days + 1
    lo = np.searchsorted(panel.ev_day, first, side="left")
    hi = np.searchsorted(panel.ev_day, view.day, side="right")
    sel = view.events[lo:hi] & (panel.ev_source[lo:hi] == SOURCE_PETITION)
    day = panel.ev_day[lo:hi][sel]
    people = panel.ev_people[lo:hi][sel]
    county = panel.ev_county[lo:hi][sel]
    point = panel.ev_point[lo:hi][sel]
    ids = panel.ev_ids[lo:hi][sel]
    recent = day > view.day - sp.window
    k = len(panel.counties)
    drafts: list[FindingDraft] = []
    county_surge = np.zeros(k, dtype=bool)
    if k:
        counts, ppl, sq = surge.series(county, day, people, k, first, days, sp)
        result = surge.evaluate(counts, ppl, first, sp, people_sq=sq)
        county_surge = result.surge
        for j in np.nonzero(result.surge)[0].tolist():
            draft = _surge_draft(
                "county", panel.counties[j], panel.counties[j], None, result, j, ""
            )
            draft.source_ids = [str(x) for x in ids[recent & (county == j)][::-1][:50]]
            drafts.append(draft)
    # Enterprises: only those with enough petitions in the window are worth testing.
    in_window = day > view.day - sp.window
    linked = point >= 0
    window_counts = np.bincount(point[in_window & linked], minlength=panel.n)
    candidates = np.nonzero(window_counts >= policy.enterprise_surge_min)[0]
    if len(candidates):
        remap = np.full(panel.n, -1)
        remap[candidates] = np.arange(len(candidates))
        ent = np.where(linked, remap[np.maximum(point, 0)], -1)
        counts, ppl, sq = surge.series(ent, day, people, len(candidates), first, days, sp)
        # Reference: the region's petitions per enterprise per day.
        linked_total = float(linked.sum())
        reference = linked_total / max(panel.n, 1) / days
        result = surge.evaluate(
            counts,
            ppl,
            first,
            sp,
            reference_rate=reference,
            min_count=policy.enterprise_surge_min,
            people_sq=sq,
        )
        for c in np.nonzero(result.surge)[0].tolist():
            i = int(candidates[c])
            draft = _surge_draft(
                "point",
                panel.point_ids[i],
                panel.counties[panel.county[i]],
                panel.point_ids[i],
                result,
                c,
                panel.names[i],
            )
            draft.source_ids = [str(x) for x in ids[recent & (point == i)][::-1][:50]]
            drafts.append(draft)
    return drafts, county_surge


def surge_text(observed: float, expected: float, *, ratio: bool = False) -> str:
    """ "近28天5件，常态不足1件": a ratio over a near-zero normal means nothing, so it is
    printed only when the normal is at least one petition."""
    if expected < 1.0:
        return f"近28天{observed:.0f}件，常态不足1件"
    text = f"近28天{observed:.0f}件，常态约{expected:.1f}件"
    return text + (f"（{observed / expected:.1f}倍）" if ratio else "")


def _surge_draft(
    entity_type: str,
    entity_id: str,
    region: str,
    point_id: str | None,
    result: surge.SurgeResult,
    j: int,
    name: str,
) -> FindingDraft:
    observed, expected = float(result.observed[j]), float(result.expected[j])
    ratio = observed / max(expected, 1e-9)
    level = "II" if ratio >= 3 or result.people_z[j] >= 6 else "III"
    who = name or "辖区"
    title = f"{risk_heading(level)}{who}信访激增：{surge_text(observed, expected)}"
    factors = [
        Factor("surge_count", f"信访激增：{surge_text(observed, expected, ratio=True)}", 60.0),
        Factor(
            "surge_people",
            f"涉及{result.people[j]:.0f}人次（常态约{result.expected_people[j]:.0f}人次）",
            30.0,
        ),
    ]
    if result.in_season:
        factors.append(Factor("festival_season", "春节前欠薪矛盾高发期，按从严标准预警", 20.0))
    return FindingDraft(
        detector="surge",
        kind="petition_surge",
        entity_type=entity_type,
        entity_id=entity_id,
        region_code=region,
        score=round(min(100.0, 50.0 + 15.0 * np.log2(max(ratio, 1.0))), 1),
        level=level,
        title=title,
        factors=factors,
        point_id=point_id,
        extra={
            "petitions_28d": int(observed),
            "expected_28d": round(expected, 2),
            "people_28d": int(result.people[j]),
            "festival_season": result.in_season,
        },
    )

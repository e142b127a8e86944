"""Simulation: adaptive tuning against a plain and a reusable holdout (docs/holdout.md).

Run: ``python benchmarks/sim_thresholdout.py`` (about 10 s); prints the table of docs/holdout.md.
"""

from __future__ import annotations

from medval.stats import simulate_adaptive_gating, thresholdout_bound


def main() -> None:
    res = simulate_adaptive_gating(2000, 2000, n_repeats=50, random_state=2015)
    s = res.summary()
    print(res.setting, "queries per team:", res.n_queries)
    print("detections per team: mean", res.detections.mean(), "max", res.detections.max())
    print("| k | plain holdout | Thresholdout | max abs. error | training | true |")
    print("|---|---|---|---|---|---|")
    for i, k in enumerate(res.checkpoints):
        print(
            f"| {k} | {s['plain_mean'][i]:.3f} ± {s['plain_se'][i]:.3f} "
            f"| {s['thresholdout_mean'][i]:.3f} ± {s['thresholdout_se'][i]:.3f} "
            f"| {s['thresholdout_max_error'][i]:.3f} "
            f"| {s['reference_mean'][i]:.3f} | {res.true_value:.3f} |"
        )
    st = res.setting
    tau = thresholdout_bound(
        2000,
        budget=int(st["budget"] or 1),
        n_queries=res.n_queries,
        threshold=st["threshold"],
        noise_scale=st["noise_scale"],
    )
    print("proven bound at this setting (95%):", round(tau, 3))


if __name__ == "__main__":
    main()

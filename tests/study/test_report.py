"""The report says what it left out: failed runs are counted per group with their stage and reason (issue 22,
finding 10: runs failing with teacher lr = 1e3 left the rate line at "(4 points, 0 dropped)")."""

import pandas as pd

from convlab.study.report import make_report
from convlab.study.schema import StudySpec


def test_a_rate_line_counts_the_failed_runs_of_its_groups():
    rows = []
    for lr, status, stage, reason in [
        (0.002, "ok", None, None),
        (3.0, "failed", "teacher", "the teacher collapsed: its output no longer depends on x (0 times ...)"),
        (1e3, "failed", "teacher", "the teacher diverged: its final loss 1e35 is ..."),
    ]:
        for seed in (0, 1):
            for K in (4, 8, 16):
                err = 1.0 / K * (1 + 0.01 * seed) if status == "ok" else None
                rows.append(dict(status=status, stage=stage, reason=reason, seed=seed, K=K, lr=lr, error=err))
    study = StudySpec.model_validate(
        {"name": "s", "base": {}, "rates": [{"x": "K", "y": "error", "group_by": ["lr"], "expected": -1, "tol": 0.2}]}
    )
    report = make_report(study, pd.DataFrame(rows))
    groups = {g.group["lr"]: g for g in report.rates[0].groups}
    assert groups[0.002].n_failed == 0 and groups[0.002].fit.n_points == 6
    assert groups[3.0].failures == {"[teacher] the teacher collapsed": 6} and groups[3.0].fit.n_points == 0
    text = report.render()
    assert "(6 points, 0 dropped, 2 seeds)" in text
    assert "(0 points, 0 dropped, 0 seeds; 6 failed runs left out: [teacher] the teacher collapsed x6)" in text
    assert "6 failed runs left out: [teacher] the teacher diverged x6" in text
    assert report.to_dict()["rates"][0]["groups"][1]["n_failed"] == 6

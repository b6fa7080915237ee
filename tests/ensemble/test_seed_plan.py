"""The members' seeds are checked before any member trains: ``check_member_seeds`` and
``seed_plan_op`` in a real kfp.local run (SubprocessRunner, no venv)."""

import pytest

from ecom_kfp.components import seed_plan_op
from ecom_kfp.ensemble.config import MAX_MEMBERS, check_member_seeds
from ecom_kfp.settings import ConfigError


@pytest.mark.parametrize(("seeds", "message"), [
    ([], "seeds=[]: must name 1 to 16 seeds"),
    (list(range(MAX_MEMBERS + 1)), "must name 1 to 16 seeds"),
    ([4, 2, 4], "seeds=[4, 2, 4]: names a seed twice"),
])
def test_seeds_that_cannot_make_one_ensemble_are_refused(seeds, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_member_seeds(seeds, "seeds")


def test_the_member_limit_and_one_seed_are_accepted():
    check_member_seeds([7], "seeds")
    check_member_seeds(list(range(MAX_MEMBERS)), "seeds")


@pytest.mark.e2e
def test_seed_plan_passes_good_seeds_and_fails_the_run_on_a_repeat(kfp_local, capfd):
    assert seed_plan_op(seeds=[3, 1]).output == [3, 1]
    with pytest.raises(RuntimeError, match="seed-plan-op"):
        seed_plan_op(seeds=[1, 1])
    # kfp.local streams the task's output: the user sees which rule the seeds broke.
    assert "seeds=[1, 1]: names a seed twice" in capfd.readouterr().out
    for typed, bad in (([0, "1"], "['1']"), ([0, 0.5], "[0.5]"), ([True], "[True]")):  # typed in the UI's list field
        with pytest.raises(RuntimeError, match="seed-plan-op"):
            seed_plan_op(seeds=typed)
        assert f"seeds: not integers: {bad}" in capfd.readouterr().out

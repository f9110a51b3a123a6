from convlab.demo import main


def test_demo_runs_and_measures_the_euler_rate(capsys):
    assert main(["--seeds", "5", "--n", "200"]) == 0
    out = capsys.readouterr().out
    euler = next(line for line in out.splitlines() if line.strip().startswith("euler ") and "slope" in line)
    assert euler.endswith(": consistent")
    assert "inconsistent" not in out and "noise floor" in out

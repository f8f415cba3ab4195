"""Run the `ganforge` command in-process as a user would, for the CLI tests."""

from ganforge.cli import main


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of one ganforge invocation."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(capsys, *argv) -> str:
    """Run a command that must fail cleanly (exit 2, one 'error:' line, no traceback)."""
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ")
    return err

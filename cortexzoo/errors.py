"""One error type for every problem a user can fix."""


class CortexzooError(Exception):
    """A problem the user can fix, with the fix.

    The CLI prints ``str(error)`` as one paragraph and exits non-zero, so the
    message must name the problem and say what to do about it.

    Parameters
    ----------
    problem : str
        What went wrong, naming the file, key or model involved.
    fix : str, optional
        What the user should do about it.
    """

    exit_code = 2

    def __init__(self, problem, fix=None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}\nFix: {fix}")


def exit_code_of(func, *args) -> int:
    """Run a command-line entry point's work; print a CortexzooError as problem and fix.

    For ``python -m cortexzoo.<module>`` entry points outside the ``cortexzoo`` CLI.

    Parameters
    ----------
    func : callable
        Does the work; its return value is ignored.
    *args
        Passed to ``func``.

    Returns
    -------
    int
        0, or the error's exit code after printing it to standard error.
    """
    import sys

    try:
        func(*args)
    except CortexzooError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0

"""A `cvc5` executable over the cvc5 Python bindings (PyPI `cvc5`, the solver library itself).

cedar-policy-symcc runs `$CVC5 --lang smt [--tlimit=MS]` and talks SMT-LIB 2 over its stdin
and stdout, one command at a time, reading each answer before it writes the next command.
PyPI's cvc5 wheel ships the 1.3.1 library and its parser but no executable; this script is the
executable's read-eval-print loop: it reads stdin until a command is complete (parentheses
balanced outside strings, quoted symbols and comments), hands it to the library's own SMT-LIB
parser (`InputParser`, `SymbolManager`) and prints what the command prints (`Command.invoke`
returns exactly the text the cvc5 binary writes: `sat`, the model, `(error "...")`).

Like the binary reading a pipe, it stops at the first error, after printing it.
"""

import os
import sys

import cvc5


def options(argv):
    """The options of a cvc5 command line this script understands: `--lang smt` (the only
    language there is here) and `--NAME=VALUE` / `--NAME VALUE` solver options."""
    result = []
    args = iter(argv)
    for arg in args:
        if not arg.startswith("--"):
            raise SystemExit(f"cvc5 (python): unexpected argument `{arg}`")
        name, sep, value = arg[2:].partition("=")
        if not sep:
            value = next(args, "true") if name == "lang" else "true"
        if name == "lang":
            if value not in ("smt", "smt2", "smtlib2.6", "smt2.6"):
                raise SystemExit(f"cvc5 (python): language `{value}` is not supported")
            continue
        result.append((name, value))
    return result


class Commands:
    """Splits a character stream into complete SMT-LIB commands."""

    def __init__(self):
        self.text = []
        self.depth = 0
        self.state = "code"  # or "string", "symbol", "comment"
        self.started = False

    def feed(self, line):
        """Adds one line; yields each command it completes."""
        for c in line:
            self.text.append(c)
            if self.state == "string":
                if c == '"':
                    self.state = "code"  # a doubled quote re-enters at once below
                continue
            if self.state == "symbol":
                if c == "|":
                    self.state = "code"
                continue
            if self.state == "comment":
                if c == "\n":
                    self.state = "code"
                continue
            if c == '"':
                self.state = "string"
            elif c == "|":
                self.state = "symbol"
            elif c == ";":
                self.state = "comment"
            elif c == "(":
                self.depth += 1
                self.started = True
            elif c == ")":
                self.depth -= 1
                if self.depth <= 0 and self.started:
                    yield "".join(self.text)
                    self.text, self.depth, self.started = [], 0, False


def run(parser, solver, symbols, text, out):
    """Parses and runs one complete command, printing its answer; an exit status when the
    loop must stop (`exit`, an error), else None."""
    parser.appendIncrementalStringInput(text)
    # Exactly one command per complete text: asking for more would read past the end of the
    # input, which ends the parser's incremental mode.
    try:
        command = parser.nextCommand()
    except RuntimeError as e:
        return error(out, "Parse Error: " + str(e))
    if command.isNull():
        return None
    if command.getCommandName() == "exit":
        return 0
    try:
        answer = command.invoke(solver, symbols)
    except RuntimeError as e:
        return error(out, str(e))
    out.write(answer)
    out.flush()
    return 1 if answer.startswith("(error ") else None


def error(out, message):
    """Prints an error as the cvc5 binary does and gives the exit status it ends with."""
    out.write('(error "' + message.replace('"', '""') + '")\n')
    out.flush()
    return 1


def quiet_library():
    """Sends what the library writes to stderr (the parser's warnings, one per `(reset)`
    session) to /dev/null: symcc never reads the solver's stderr, and a full pipe would block
    the solver. This script's own errors still reach the original stderr."""
    original = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(original, "w", buffering=1)


def main():
    settings = options(sys.argv[1:])
    quiet_library()
    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)

    def configure():
        solver.setOption("print-success", "false")
        for name, value in settings:
            solver.setOption(name, value)

    configure()
    symbols = cvc5.SymbolManager(tm)
    parser = cvc5.InputParser(solver, symbols)
    parser.setIncrementalStringInput(cvc5.InputLanguage.SMT_LIB_2_6, "<stdin>")
    commands = Commands()
    out = sys.stdout
    # symcc sends no `set-logic`; the binary then assumes ALL and warns on stderr, which symcc
    # never reads (a full pipe would block the solver): say ALL before the first command,
    # unless that command sets a logic itself. The parser keeps it across `(reset)`.
    logic_pending = True
    for line in sys.stdin:
        for text in commands.feed(line):
            command = text.lstrip()
            if logic_pending and not command.startswith("(set-logic"):
                status = run(parser, solver, symbols, "(set-logic ALL)", out)
                if status is not None:
                    return status
            logic_pending = False
            status = run(parser, solver, symbols, text, out)
            if status is not None:
                return status
            if command.startswith("(reset"):
                configure()
    return 0


if __name__ == "__main__":
    sys.exit(main())

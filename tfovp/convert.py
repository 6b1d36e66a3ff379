"""Convert saved Keras models from the command line.

    python -m tfovp.convert overparameterize IN.keras OUT.keras --depth 2 [--layers a,b]
                                             [--hidden-widths 64] [--init balanced|paper]
    python -m tfovp.convert collapse IN.keras OUT.keras

`overparameterize` replaces Dense, EinsumDense, MultiHeadAttention and Conv1D/2D/3D
layers (also inside TimeDistributed and user-written layers) by their factored versions
(`tfovp.factoring`; by default an exact balanced factorization: the saved model computes
the same function); `collapse` turns them back into the plain Keras layers, so OUT.keras
loads without tfovp. A file that is missing,
not a .keras archive or not loadable is named in a one-line error (exit status 2), as is
a target that is the source itself or cannot be written. OUT.keras is written to a
temporary file beside it and renamed, so an existing OUT.keras is replaced only by a
complete model (a kill during the save leaves it as it was). Ctrl-C or SIGTERM ends
with one line (exit status 130 or 143) and writes nothing.
"""

import pathlib
import sys
import zipfile

from tfovp.cli import ArgumentParser

PROG = "python -m tfovp.convert"
INITS = ("balanced", "paper")  # tfovp.factoring.INITS, without importing Keras for --help
# Factors per kernel: the paper's experiments use at most 8; each factor adds a matrix
# product to every forward and backward pass and, at the default hidden widths, a full
# copy of the layer's parameters, so a larger value is a typo, not an experiment.
MAX_DEPTH = 64


def _parser():
    parser = ArgumentParser(prog=PROG, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{overparameterize,collapse}")
    over = commands.add_parser(
        "overparameterize",
        help="Dense/EinsumDense/MultiHeadAttention/Conv -> factored (same function by default)",
    )
    over.add_argument("source", help="the saved model (.keras)")
    over.add_argument("target", help="where to save the converted model (.keras)")
    over.add_argument(
        "--depth", type=int, default=2, help=f"factors per kernel (an integer from 2 to {MAX_DEPTH}; default: 2)"
    )
    over.add_argument("--layers", default=None, help="comma-separated layer names (default: every plain one of those)")
    over.add_argument(
        "--hidden-widths",
        type=int,
        default=None,
        help="width of the new hidden dimensions (an integer >= 1; default: each layer's units)",
    )
    over.add_argument(
        "--init",
        default="balanced",
        choices=INITS,
        help="balanced: exact factorization of the kernel (same function); paper: keep the kernel "
        "and draw the new factors like the paper's CNN (default: balanced)",
    )
    down = commands.add_parser("collapse", help="factored layers -> plain Keras layers (loadable without tfovp)")
    down.add_argument("source", help="the saved model (.keras)")
    down.add_argument("target", help="where to save the collapsed model (.keras)")
    return parser


def _load(parser, source):
    path = pathlib.Path(source)
    if not path.is_file():
        parser.error(f"{source}: no such file")
    if not zipfile.is_zipfile(path):
        parser.error(f"{source}: not a .keras model file (not a zip archive)")
    import keras

    import tfovp

    tfovp.register_keras_objects()  # so that saved tfovp layers load
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        parser.error(f"{source}: cannot be loaded as a Keras model ({_root_cause(error)})")


def _root_cause(error):
    """The first line of the innermost exception (Keras wraps the reason in several)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_target(parser, args):
    """One line (exit status 2) for a target that cannot be written or is the source."""
    from tfovp.files import output_problem

    if not str(args.target).endswith(".keras"):
        parser.error(f"{args.target}: the target must end in .keras")
    source, target = pathlib.Path(args.source), pathlib.Path(args.target)
    if target.exists() and source.exists() and source.resolve() == target.resolve():
        parser.error(f"{args.target}: is the source model itself; write the converted model to another file")
    problem = output_problem(target)
    if problem:
        parser.error(f"{args.target}: {problem}")
    if getattr(args, "depth", 2) > MAX_DEPTH:
        parser.error(f"--depth {args.depth}: expected at most {MAX_DEPTH} (the paper's deepest net has 8 factors)")


def main(argv=None):
    from tfovp.console import stop_on_sigterm, stop_status, stop_word, stops_surfaced

    stop_on_sigterm()
    try:
        with stops_surfaced():
            return _convert(argv)
    except KeyboardInterrupt as error:
        print(f"\n{PROG}: {stop_word(error)}; nothing was written", file=sys.stderr)
        return stop_status(error)


def _convert(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    _check_target(parser, args)
    from tfovp.console import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tfovp import factoring

    model = _load(parser, args.source)
    try:
        if args.command == "overparameterize":
            layers = args.layers.split(",") if args.layers else None
            result = factoring.overparameterize(
                model, depth=args.depth, hidden_widths=args.hidden_widths, init=args.init, layers=layers
            )
        else:
            result = factoring.collapse(model)
    except ValueError as error:
        parser.error(str(error))
    from tfovp.files import atomic_save

    try:
        atomic_save(args.target, result.save)
    except OSError as error:
        print(f"{PROG}: error: {args.target}: cannot write ({error.strerror or error}); nothing was written",
              file=sys.stderr)  # fmt: skip
        return 1
    print(
        f"{args.command}: {args.source} -> {args.target} ({result.count_params():,} parameters, "
        f"was {model.count_params():,})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert saved Keras models from the command line.

    python -m tfovp.convert overparameterize IN.keras OUT.keras --depth 2 [--layers a,b]
                                             [--hidden-widths 64] [--init balanced|paper]
    python -m tfovp.convert collapse IN.keras OUT.keras

`overparameterize` replaces Dense, EinsumDense and MultiHeadAttention layers by their
factored versions (`tfovp.factoring`; by default an exact balanced factorization: the
saved model computes the same function); `collapse` turns them back into the plain Keras
layers, so OUT.keras loads without tfovp. A file that is missing,
not a .keras archive or not loadable is named in a one-line error (exit status 2).
"""

import pathlib
import sys
import zipfile

from tfovp._cli import ArgumentParser

PROG = "python -m tfovp.convert"
INITS = ("balanced", "paper")  # tfovp.factoring.INITS, without importing Keras for --help


def _parser():
    parser = ArgumentParser(prog=PROG, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{overparameterize,collapse}")
    over = commands.add_parser(
        "overparameterize", help="Dense/EinsumDense/MultiHeadAttention -> factored (same function by default)"
    )
    over.add_argument("source", help="the saved model (.keras)")
    over.add_argument("target", help="where to save the converted model (.keras)")
    over.add_argument("--depth", type=int, default=2, help="factors per kernel (an integer >= 2; default: 2)")
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


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if not str(args.target).endswith(".keras"):
        parser.error(f"{args.target}: the target must end in .keras")
    from tfovp._console import import_tensorflow_quietly

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
    try:
        result.save(args.target)
    except OSError as error:
        parser.error(f"{args.target}: cannot write ({error.strerror or error})")
    print(
        f"{args.command}: {args.source} -> {args.target} ({result.count_params():,} parameters, "
        f"was {model.count_params():,})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

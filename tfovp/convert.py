"""Convert saved Keras models from the command line.

    python -m tfovp.convert overparameterize IN.keras OUT.keras --depth 2 [--layers a,b]
                                             [--hidden-widths 64] [--init balanced|paper]
    python -m tfovp.convert collapse IN.keras OUT.keras

`overparameterize` replaces Dense layers by FactoredDense layers (by default an exact
balanced factorization: the saved model computes the same function); `collapse` turns
them back into Dense layers, so OUT.keras loads without tfovp.
"""

import argparse
import sys

import keras

from tfovp import factoring


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tfovp.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    over = commands.add_parser("overparameterize", help="Dense -> FactoredDense")
    over.add_argument("source")
    over.add_argument("target")
    over.add_argument("--depth", type=int, default=2, help="factors per kernel (>= 2)")
    over.add_argument("--layers", default=None, help="comma-separated Dense layer names (default: all)")
    over.add_argument("--hidden-widths", type=int, default=None, help="hidden width (default: units)")
    over.add_argument("--init", default="balanced", choices=factoring.INITS)
    down = commands.add_parser("collapse", help="FactoredDense -> Dense")
    down.add_argument("source")
    down.add_argument("target")
    args = parser.parse_args(argv)
    model = keras.models.load_model(args.source, compile=False)
    try:
        if args.command == "overparameterize":
            layers = args.layers.split(",") if args.layers else None
            result = factoring.overparameterize(model, depth=args.depth, hidden_widths=args.hidden_widths,
                                                init=args.init, layers=layers)
        else:
            result = factoring.collapse(model)
    except ValueError as error:
        parser.error(str(error))
    result.save(args.target)
    print(f"{args.command}: {args.source} -> {args.target} ({result.count_params():,} parameters, "
          f"was {model.count_params():,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

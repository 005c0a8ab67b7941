"""qlearn's main demonstration: ``python -m qlearn.demo`` (or ``qlearn-demo``).

It tells the whole story on the 8x8 handwritten digits, printing each step:

1. the affine map, by hand: scale, zero point, the error, per-tensor vs per-channel;
2. calibration: five observers choose a range on heavy-tailed data;
3. a float CNN (conv-bn-relu blocks, a residual add through ``FloatFunctional``)
   trained with qlearn's autograd;
4. one table of fp32 against dynamic int8, static int8 in eager mode (``fuse_modules``,
   ``prepare``, ``convert``) and in graph mode (``prepare_fx``, ``convert_fx``), QAT
   (``prepare_qat``, ``convert``) and 4-bit DoReFa/PACT: test accuracy, size, latency
   per batch at one thread, speedup over fp32;
5. the sensitivity table: each layer quantized alone, at int8 and at 4 bits;

then writes an HTML report with the figures (matplotlib, when installed) to the folder
``--out`` (default ``./qlearn-demo-report``) and names it.  ``--quick`` trains less and
times fewer rounds.  Progress bars need tqdm and show on a terminal only; without tqdm
or matplotlib the demonstration runs all the same.
"""
import argparse
import io
import os
import sys
import time

from .models import DigitsNet, accuracy, digits_cnn, fit, train

__all__ = ["main", "run_demo", "digits_cnn", "DigitsNet", "train", "fit", "accuracy"]

DEFAULT_OUT = "qlearn-demo-report"


def _parser():
    ap = argparse.ArgumentParser(
        prog="python -m qlearn.demo",
        description="qlearn's demonstration: quantize a digits CNN five ways, compare, "
                    "and write an HTML report.")
    ap.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                    help=f"folder for the report (default: ./{DEFAULT_OUT})")
    ap.add_argument("--quick", action="store_true",
                    help="a fast run: fewer epochs and timing rounds (about a third)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="float training epochs (default 8, quick 3)")
    ap.add_argument("--qat-epochs", type=int, default=1,
                    help="int8 QAT fine-tuning epochs (default 1)")
    ap.add_argument("--fourbit-epochs", type=int, default=None,
                    help="4-bit DoReFa/PACT fine-tuning epochs (default 2, quick 1)")
    ap.add_argument("--width", type=int, default=32,
                    help="channels of the CNN's convolutions (default 32)")
    ap.add_argument("--random-state", type=int, default=0, metavar="N",
                    help="the integer the NumPy generators (weights, batch order, data "
                         "split) start from (default 0)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--no-report", action="store_true", help="print only, write nothing")
    return ap


def _positive(ap, name, value):
    if value is not None and value < 1:
        ap.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def main(argv=None):
    """Run the demonstration: the entry point of ``python -m qlearn.demo`` and of the
    ``qlearn-demo`` script.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``): ``--out DIR``, ``--quick``,
        ``--epochs``, ``--qat-epochs``, ``--fourbit-epochs``, ``--width``,
        ``--random-state``, ``--no-progress``, ``--no-report``; ``--help`` describes them.

    Returns
    -------
    int
        0, the exit status.  A bad argument exits with status 2 and a message naming it.

    Examples
    --------
    >>> from qlearn.demo import main
    >>> main(["--epochs", "0"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    run_demo(argv)
    return 0


def run_demo(argv=None):
    """:func:`main`'s work: run every section, print it, write the report.

    Parameters
    ----------
    argv : list of str, optional
        As for :func:`main`.

    Returns
    -------
    dict
        What was measured: one entry per section (``"affine"``, ``"calibration"``,
        ``"float_history"``, ``"compare"``, ``"sensitivity"``), the run's ``"seconds"``
        and ``"cpu_seconds"``, and ``"report"`` (the path of ``index.html``, or None).
        Without scikit-learn (which ships the digits) only the first two sections run.
    """
    ap = _parser()
    args = ap.parse_args(argv)
    _positive(ap, "epochs", args.epochs)
    _positive(ap, "width", args.width)
    _positive(ap, "qat_epochs", args.qat_epochs)
    _positive(ap, "fourbit_epochs", args.fourbit_epochs)
    if not args.no_report and os.path.exists(args.out) and not os.path.isdir(args.out):
        ap.error(f"--out must be a folder, got {args.out!r}, which is a file")
    epochs = args.epochs or (3 if args.quick else 8)
    fourbit_epochs = args.fourbit_epochs or (1 if args.quick else 2)
    rounds, repeats = (3, 1) if args.quick else (7, 2)
    show = False if args.no_progress else None        # None: bars on a terminal only

    import qlearn as ql
    from qlearn.datasets import load_digits

    from . import story
    t_start, cpu_start = time.perf_counter(), time.process_time()
    config = io.StringIO()
    ql.show_config(file=config)
    print(f"qlearn {ql.__version__}: neural-network quantization from scratch "
          f"(NumPy + Cython/OpenMP)")
    print("\n".join(config.getvalue().splitlines()[1:]))

    results = {"affine": story.affine_map(), "calibration": story.calibration(
        show_progress=show)}
    try:
        data = load_digits(0.2, args.random_state)     # test fraction, split state
    except ImportError as exc:             # scikit-learn ships the digits
        print(f"\nThe rest needs the digits data: {exc}")
        return results
    model, results["float_history"] = story.float_model(data, epochs, width=args.width,
                                                        random_state=args.random_state,
                                                        show_progress=show)
    results["compare"] = story.compare(model, data, args.qat_epochs, fourbit_epochs,
                                       rounds=rounds, repeats=repeats,
                                       random_state=args.random_state,
                                       show_progress=show)
    results["sensitivity"] = story.sensitivity_tables(model, data, show_progress=show)

    seconds = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    results.update(config=config.getvalue(), seconds=seconds, cpu_seconds=cpu,
                   args=vars(args),
                   command="python -m qlearn.demo " + " ".join(
                       argv if argv is not None else sys.argv[1:]))
    from .text import heading, load_note
    print(heading(6, "Report"))
    results["report"] = None
    if args.no_report:
        print("  (--no-report: nothing written)")
    else:
        from .report import write_report
        path, problem = write_report(args.out, results)
        results["report"] = path
        if problem:
            print(f"  note: {problem}")
        print(f"  written to {os.path.abspath(args.out)}{os.sep}\n"
              f"  open {os.path.abspath(path)}")
    print(f"\ndone in {seconds:.0f} s ({cpu:.0f} s of CPU in this process{load_note()})")
    return results

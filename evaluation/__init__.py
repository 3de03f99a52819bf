"""Evaluation: ground truth we can trust, tracking and naming metrics, speed.

Modules
-------
sprites     face sprites cut from photos (or synthetic ones for tests)
synth       the broadcast simulator: plan, render, write a MOTChallenge folder
gt          reading and writing ground truth, tracker output, names, events,
            identity maps, cut lists and sparse hand labels
metrics     py-motmetrics (MOTA, IDF1, IDsw, Frag), TrackEval (HOTA), naming
baseline    the naive per-frame baseline the pipeline is compared with
bench       speed per stage, peak memory, scaling
regression  the CI accuracy run
report      runs everything and writes a markdown report with plots

Command line: ``python -m evaluation {synth,score,bench,scaling,regression,report}``.
Nothing heavy is imported here.
"""

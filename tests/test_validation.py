"""Physics validated against exact solutions and laboratory benchmarks.

Each case returns metrics with bounds (see tsunami/validation); these tests fail when any
judged metric misses its bound. The quick cases run in `make test`; the conical island at
full resolution is marked slow and runs in `make validate`.
"""

import numpy as np
import pytest

from tsunami.validation import conical_island, format_table, registry

QUICK = [name for name, case in registry().items() if case.quick]


def assert_passes(result):
    failed = [m for m in result.metrics if m.passed is False]
    assert not failed, "\n" + format_table(failed)


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    """A quick case's result, run once for the tests of this module that read it."""
    results = {}

    def get(name):
        if name not in results:
            results[name] = registry()[name].run(tmp_path_factory.mktemp(name))
        return results[name]

    return get


@pytest.mark.parametrize("name", QUICK)
def test_quick_case_meets_its_bounds(name, quick_result):
    result = quick_result(name)
    assert any(m.passed is not None for m in result.metrics), "case judges nothing"
    assert_passes(result)
    for figure in result.figures:
        assert figure.stat().st_size > 10_000


def test_bp1_runup_and_profiles_are_judged(quick_result):
    result = quick_result("bp1")
    names = [m.name for m in result.metrics]
    assert "max runup R/d (runup law)" in names
    assert sum(n.startswith("profile") for n in names) == 8


def test_conical_island_case_a_on_a_coarse_grid():
    """Case A at 5 cm: the runup facing the wave and the gauges (the 2.5 cm grid of all
    three cases runs in `make validate`)."""
    result = conical_island._case("a", None, dx=0.05)
    assert_passes(result)
    k = next(m for m in result.metrics if m.name == "gauge peaks Aida K (g6-g22)")
    assert 0.8 < k.model < 1.25


@pytest.mark.slow
@pytest.mark.parametrize("case", ["bp6_a", "bp6_b", "bp6_c"])
def test_conical_island_full_resolution(case, tmp_path):
    assert_passes(registry()[case].run(tmp_path))


@pytest.mark.slow
def test_okushiri_demo_against_the_surveyed_runup(tmp_path):
    assert_passes(registry()["okushiri_field"].run(tmp_path))


@pytest.mark.slow
def test_okushiri_alert_forecast_does_not_under_predict(tmp_path):
    """The watch service's forecast 1 from the alert alone: K <= 1.25 (measured 1.15)."""
    assert_passes(registry()["okushiri_alert"].run(tmp_path))


def test_waterline_runup_is_the_highest_ground_reached_not_the_highest_surface():
    from types import SimpleNamespace

    import numpy as np

    from tsunami.diagnostics import runup, waterline_runup

    # a slope rising 1 m per cell; water piled 2 m deep on the 1 m cell, a 0.5 mm film
    # on the 3 m cell, nothing on the 4 m cell
    ground = np.array([[-1.0, 1.0, 2.0, 3.0, 4.0]])
    eta_max = np.array([[0.5, 3.0, 2.1, 3.0005, np.nan]])
    model = SimpleNamespace(h=-ground, eta_max=eta_max, dry_depth=1e-4,
                            initially_wet=ground < 0)
    assert runup(model, 1e-3) == 3.0
    assert waterline_runup(model, 1e-3) == 2.0  # the film is below the wetting depth
    assert waterline_runup(model) == 3.0  # counted above the model's dry depth
    assert np.isnan(waterline_runup(model, 1e-3, mask=ground > 3.5))


def test_okushiri_runup_figure_keeps_its_legends_off_the_data():
    """Drawn inside the survey-point map, its legend covered part of the coast: every
    legend stands below the panels, clear of both axes, within the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from tsunami.validation import okushiri

    points = okushiri.survey_points()
    model = points[:, 2] * np.where(np.arange(len(points)) % 7 == 0, 0.0, 1.1)
    fig = okushiri.runup_figure(points, model, 1.1, 1.2)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    plots = [ax for ax in fig.axes if ax.get_title()]
    assert len(plots) == 2
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert {"Tohoku Univ. survey", "UJNR survey", "no modelled flooding within 200 m"
            } <= set(labels)
    assert not any(ax.get_legend() for ax in fig.axes)
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
        for ax in fig.axes:  # the panels and the colour bar, labels and ticks included
            assert not box.overlaps(ax.get_tightbbox(renderer)), (legend, ax)


def test_making_figures_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    """Validation cases and source estimates draw on matplotlib Figures without pyplot:
    a notebook or a GUI that imports them and has them plot keeps its backend (they
    switched every caller to Agg, on import for the Tohoku case and the estimator, so a
    notebook's plots stopped showing)."""
    import subprocess
    import sys
    from textwrap import dedent

    code = dedent(f"""
        from pathlib import Path
        import matplotlib
        matplotlib.use("svg")
        import numpy as np
        import tsunami.realtime.estimate
        from tsunami.validation import synthetic_coast, tohoku2011
        t = np.arange(0.0, 600.0, 60.0)
        observed = {{"G1": (t, np.sin(t)), "G2": (t, -np.sin(t))}}
        modelled = {{"G1": (t, np.cos(t)), "G2": (t, -np.cos(t))}}
        tohoku2011._plot_forward(Path({str(tmp_path / "gauges.png")!r}), observed, modelled,
                                 "test")
        runs = [synthetic_coast.CoastRun(s, scheme, 1e4 * (1 + s / 100), 5.0, 2.0, 10,
                                         1.0 / s, 1.0 / s, None)
                for s in (20.0, 10.0, 5.0) for scheme in ("leapfrog", "fv2")]
        synthetic_coast._plot(Path({str(tmp_path / "coast.png")!r}), runs, runs[-1])
        print(matplotlib.get_backend())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg"]
    assert (tmp_path / "gauges.png").stat().st_size > 0
    assert (tmp_path / "coast.png").stat().st_size > 0

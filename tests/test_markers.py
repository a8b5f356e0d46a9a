"""markers.Markers gives back the markers appended, in less memory than Marker objects."""
import pickle
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logreport.events import CHECKPOINT, Marker
from logreport.markers import Markers
from logreport.model import Run
from logreport.reader import load

DATA = Path(__file__).parent / "data"
SFT_LORA = DATA / "llamafactory" / "sft_lora" / "console.log"

numbers = st.one_of(st.none(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                    st.just(-(1 << 63)))
markers = st.builds(Marker, st.sampled_from(["checkpoint", "traceback", "new_run", "table"]),
                    st.one_of(st.text(max_size=30), st.none(), st.just("\ud800 保存"),
                              st.dictionaries(st.text(), st.integers())),
                    st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False)),
                    numbers, numbers, st.one_of(st.none(), st.sampled_from(["a.log", "b.log"])))


@settings(max_examples=300, deadline=None)
@given(st.lists(markers, max_size=20))
def test_markers_come_back_as_appended(appended):
    """Values and their types (an int step stays an int, a float one a float; None and NaN
    stay apart), in order, also after a pickle (a site's saved reading state)."""
    kept = Markers()
    for m in appended:
        kept.append(m)
    assert len(kept) == len(appended)
    assert repr(list(kept)) == repr(appended)
    assert repr(list(pickle.loads(pickle.dumps(kept)))) == repr(appended)


def test_a_real_runs_markers_are_the_parsers():
    """The real sft_lora console's checkpoint markers, read back from the run."""
    run = load(str(SFT_LORA))
    saved = [m for m in run.markers if m.kind == CHECKPOINT]
    assert saved and all(isinstance(m.step, int) and isinstance(m.line, int) for m in saved)
    assert [m.detail for m in saved] == \
        [line.split("Saving model checkpoint to ", 1)[1].strip()
         for line in SFT_LORA.read_text().splitlines() if "Saving model checkpoint to " in line]


def _traced(build) -> int:
    tracemalloc.start()
    try:
        kept = build()
        size = tracemalloc.get_traced_memory()[0]
        del kept
        return size
    finally:
        tracemalloc.stop()


def test_a_runs_many_checkpoints_take_half_the_memory_of_marker_objects():
    """100,000 checkpoint markers (a GB of console saving every 30 steps) as the real log
    prints them, added to a run: under half the memory of the same Marker objects in a list
    (a run kept them so before)."""
    real = next(m for m in load(str(SFT_LORA)).markers if m.kind == CHECKPOINT)

    def many():
        return (Marker(CHECKPOINT, real.detail.replace("-", f"-{i}"), line=41 * i, step=30 * i,
                       time=1.7e9 + i, file=real.file) for i in range(1, 100_001))

    def run():
        kept = Run("console.log")
        for m in many():
            kept.add(m)
        return kept

    assert _traced(run) < 0.5 * _traced(lambda: list(many()))

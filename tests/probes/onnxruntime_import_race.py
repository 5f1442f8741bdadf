"""Run in a fresh process: the encoder loads on one thread while a search opens the vector index on another, with
the loading thread held inside onnxruntime's package import (as a cold disk holds it) until the other one starts.
Prints the errors the two threads met, as a list of exception names."""

import importlib.machinery
import sys
import threading
import time

from codeneedle.indexer.models import TUNED_MODEL, resolve_model
from codeneedle.indexer.onnx_bert import OnnxBert
from codeneedle.indexer.vectors import VectorIndex

inside = threading.Event()


class SlowLoader:
    """onnxruntime's own loader, which stops for a moment before it creates the module."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        inside.set()
        time.sleep(0.3)
        return self.loader.create_module(spec)

    def exec_module(self, module):
        return self.loader.exec_module(module)


class SlowDisk:
    """Gives the model thread's import of onnxruntime the slow loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "onnxruntime" or threading.current_thread().name != "model":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = SlowLoader(spec.loader)
        return spec


def main() -> None:
    folder = resolve_model(TUNED_MODEL)[1]
    sys.meta_path.insert(0, SlowDisk())
    errors: list[str] = []

    def run(make) -> None:
        try:
            make()
        except Exception as e:  # noqa: BLE001 - every failure is the finding
            errors.append(f"{type(e).__name__}: {e}")

    model = threading.Thread(target=run, args=(lambda: OnnxBert(folder, "int8"),), name="model")
    model.start()
    inside.wait()
    search = threading.Thread(target=run, args=(lambda: VectorIndex(4),), name="search")
    search.start()
    model.join()
    search.join()
    print(errors)


if __name__ == "__main__":
    main()

"""pytest hooks for nbval: compare only the plain-text outputs of marked cells."""


def pytest_collectstart(collector):
    # TensorFlow's warnings on stderr differ between machines and runs; HTML
    # duplicates the text/plain of tables.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html", "application/javascript", "stderr")

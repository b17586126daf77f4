"""Give a page a section label of its own, such as "7b", in place of its number.

Chapter 7b is a section of chapter 7 in ``_toc.yml`` (so that chapters 8 to 10
keep their numbers), and Sphinx numbers it after chapter 7's own headings:
7.11. The text calls it 7b. After Sphinx has numbered the sections, this
replaces the number of each page named in ``section_labels`` (a page's
docname to its label) by the label, in the page's headings, the sidebar and
the previous/next links: (7, 11) becomes ("7b",) and (7, 11, 2) ("7b", 2),
which the HTML writer prints as "7b" and "7b.2". Figure numbers are not
touched (numfig numbers figures by chapter: a figure in 7b is "Fig. 7.N").
"""

from sphinx.errors import ConfigError


def _relabel(number, prefix, label):
    """``number`` with ``prefix`` replaced by ``(label,)``, or unchanged."""
    if number and tuple(number[: len(prefix)]) == prefix:
        return (label, *number[len(prefix) :])
    return number


def _relabel_sections(app, env):
    changed = []
    for docname, label in app.config.section_labels.items():
        if docname not in env.toc_secnumbers:
            raise ConfigError(f"section_labels: {docname!r} is not a numbered page.")
        prefix = tuple(env.toc_secnumbers[docname].get("", ()))
        if not prefix:
            continue  # a page past the toctree's numbered depth has none
        for numbers in env.toc_secnumbers.values():
            for anchor, number in numbers.items():
                numbers[anchor] = _relabel(number, prefix, label)
        for toc in env.tocs.values():
            for node in toc.findall(lambda node: "secnumber" in node):
                node["secnumber"] = _relabel(node["secnumber"], prefix, label)
        title = env.titles.get(docname)
        if title is not None and title.get("secnumber"):
            title["secnumber"] = _relabel(title["secnumber"], prefix, label)
        changed.append(docname)
    return changed


def setup(app):
    app.add_config_value("section_labels", {}, "env", [dict])
    # After Sphinx's own numbering (the toctree collector, priority 500).
    app.connect("env-get-updated", _relabel_sections, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Sphinx extension: the Equations page, and equation references that name their page.

``.. equations-table::`` renders ``docs/equations_table.py`` (one row per labelled
equation) and checks it:

* every function in the table must import (a renamed or removed function is a build
  error under ``-W``);
* every label must be defined, on the page the table says (checked once all pages are
  read);
* labels defined in the docs but missing from the table are listed on the page;
* every function of the table must be documented (autodoc) on some page, under the name
  the table gives or the name it is defined under (``qlearn.quantizers.pact_quantize``
  is documented as ``qlearn.quantizers.pact.pact_quantize``), and its link goes there;
* no equation is typeset twice under two labels (the display math of every page is
  compared, spacing and sizing commands left out).

Sphinx numbers equations per page, so a bare "(3)" cited from another page (a docstring
shown on an API page, say) would point at that page's own equation (3).  The ``eq``
role therefore appends the page title when the equation lives on another page:
"(3) in Calibration: observers, QConfig and calibrators".
"""
import importlib
import os
import re
import sys

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.domains.math import MathDomain
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import equations_table  # noqa: E402  (docs/equations_table.py)


def resolve_dotted(name):
    """``a.b.C.d``: attributes from the top package down, importing submodules on the way
    (``qlearn.onnx.export`` is the function the package exports, not its module)."""
    parts = name.split(".")
    obj = importlib.import_module(parts[0])
    for i, attr in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i + 1]))
    return obj


class PagedMathDomain(MathDomain):
    """The math domain, with the page title after a number that lives on another page."""

    def resolve_xref(self, env, fromdocname, builder, typ, target, node, contnode):
        ref = super().resolve_xref(env, fromdocname, builder, typ, target, node, contnode)
        if ref is not None and typ == "eq":
            docname = self.equations[target][0]
            if (docname != fromdocname and docname in env.titles
                    and not node.get("qlearn_number_only")):
                ref.append(nodes.Text(f" in {env.titles[docname].astext()}"))
        return ref


def canonical_name(obj, name):
    """Where autodoc would document ``obj`` by default: its module and qualified name."""
    module, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qual}" if module and qual else name


def _cell(text):
    return text.replace("\n", " ")


class EquationsTable(SphinxDirective):
    """The table of every equation, generated from ``docs/equations_table.py``."""

    has_content = False

    def run(self):
        self.env.note_dependency(equations_table.__file__)
        problems = []
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 12 38 18 14 18", "",
                 "   * - Eq.", "     - Formula", "     - From", "     - Derived on",
                 "     - Computed by"]
        canonical = {}
        for row in equations_table.EQUATIONS:
            funcs = []
            for name in row.functions:
                try:
                    canonical[name] = canonical_name(resolve_dotted(name), name)
                except (ImportError, AttributeError) as exc:
                    problems.append(f"equations table: {row.label!r} names {name!r}, which "
                                    f"does not import ({exc})")
                parts = name.split(".")
                role = "class" if parts[-1][:1].isupper() else "func"
                # a method shows its class: QTensor.dequantize, not a bare dequantize
                shown = ".".join(parts[-2:]) if parts[-2][:1].isupper() else parts[-1]
                funcs.append(f":py:{role}:`{shown} <{name}>`")
            sources = []
            for key in row.sources:
                title, anchor = equations_table.SOURCES[key]
                sources.append(f":ref:`{title} <{anchor}>`" if anchor else title)
            lines += [f"   * - :eq:`{row.label}` ``{row.label}``",
                      f"     - :math:`{_cell(row.formula)}`",
                      f"     - {'; '.join(sources)}",
                      f"     - :doc:`/{row.page}`",
                      f"     - {', '.join(funcs) or '(in the page)'}"]
        for p in problems:
            logger.warning(p, location=(self.env.docname, self.lineno))
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="equations_table.py"),
                                self.content_offset, container)
        # the "Derived on" column names the page: the numbers stand alone
        for ref in container.findall(addnodes.pending_xref):
            if ref.get("reftype") == "eq":
                ref["qlearn_number_only"] = True
            elif ref.get("refdomain") == "py" and ref.get("reftarget") in canonical:
                ref["qlearn_canonical"] = canonical[ref["reftarget"]]
        # where the labels not in the table go, once all pages are read
        container += missing_placeholder()
        return container.children


class missing_placeholder(nodes.General, nodes.Element):
    """Replaced, after reading, by the list of labels that the table lacks."""


def resolve_canonical(app, env, node, contnode):
    """A table link whose name is not documented goes to the name autodoc used."""
    target = node.get("qlearn_canonical")
    if not target or target == node.get("reftarget"):
        return None
    py = env.get_domain("py")
    return py.resolve_xref(env, node.get("refdoc"), app.builder, node["reftype"], target,
                           node, contnode)


def _norm_math(text):
    text = re.sub(r"\\(?:[,;!: ]|quad|qquad)", " ", text)
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)\b", "", text)
    return re.sub(r"\s+", "", text).rstrip(".,")


def record_math(app, doctree):
    """The labelled display equations of a page, by their normalized LaTeX."""
    store = app.env.__dict__.setdefault("qlearn_labelled_math", {})
    for node in doctree.findall(nodes.math_block):
        if node.get("label"):
            store[node["label"]] = (app.env.docname, _norm_math(node.astext()))


def purge_math(app, env, docname):
    store = env.__dict__.get("qlearn_labelled_math", {})
    for label in [lab for lab, (doc, _) in store.items() if doc == docname]:
        del store[label]


def merge_math(app, env, docnames, other):
    store = env.__dict__.setdefault("qlearn_labelled_math", {})
    for label, (doc, text) in other.__dict__.get("qlearn_labelled_math", {}).items():
        if doc in docnames:
            store[label] = (doc, text)


def check_labels(app, env):
    """Each label of the table is defined, on the page the table names; each function
    is documented somewhere; no equation has two labels."""
    py_objects = env.get_domain("py").objects
    for row in equations_table.EQUATIONS:
        for name in row.functions:
            try:
                canon = canonical_name(resolve_dotted(name), name)
            except (ImportError, AttributeError):
                continue                    # reported by the directive
            if name not in py_objects and canon not in py_objects:
                logger.warning(f"equations table: {row.label!r} names {name!r}, which no "
                               f"page documents (autodoc it, as {name} or {canon})")
    by_text = {}
    for label, (doc, text) in sorted(env.__dict__.get("qlearn_labelled_math", {}).items()):
        by_text.setdefault(text, []).append(f"{label} ({doc})")
    for labels in by_text.values():
        if len(labels) > 1:
            logger.warning(f"the same equation is typeset under two labels: "
                           f"{', '.join(labels)}")
    equations = env.get_domain("math").equations
    for row in equations_table.EQUATIONS:
        where = equations.get(row.label)
        if where is None:
            logger.warning(f"equations table: label {row.label!r} is not defined on any "
                           f"page (expected on {row.page!r})")
        elif where[0] != row.page:
            logger.warning(f"equations table: label {row.label!r} is defined on "
                           f"{where[0]!r}, the table says {row.page!r}")


def fill_missing(app, doctree, docname):
    equations = app.env.get_domain("math").equations
    known = {row.label for row in equations_table.EQUATIONS}
    for node in doctree.findall(missing_placeholder):
        extra = sorted((lab, doc) for lab, (doc, _) in equations.items() if lab not in known)
        if not extra:
            node.replace_self([])
            continue
        para = nodes.paragraph(text="Labelled equations not yet in the table: "
                               + ", ".join(f"{lab} ({doc})" for lab, doc in extra) + ".")
        node.replace_self(nodes.note("", para))


def setup(app):
    app.add_domain(PagedMathDomain, override=True)
    app.add_directive("equations-table", EquationsTable)
    app.add_node(missing_placeholder)
    app.connect("env-check-consistency", check_labels)
    app.connect("missing-reference", resolve_canonical)
    app.connect("doctree-read", record_math)
    app.connect("env-purge-doc", purge_math)
    app.connect("env-merge-info", merge_math)
    app.connect("doctree-resolved", fill_missing)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""The project's tooling, apart from the library: what a maintainer or a teacher runs, never what a notebook computes
with. Each module with a command line runs as ``python -m geffect_lite.tooling.<name>``.

==================  ==========================================================================================
module              what
==================  ==========================================================================================
``bench``           the efficiency benchmark (``python -m geffect_lite bench``): ``gl.run`` vs the plain step
``notebooks``       execute the notebook series in place (``python -m geffect_lite notebooks --execute``)
``results``         write a committed result with its provenance (command, git commit, date, seconds, machine)
``student``         students' versions of the notebooks (``make student``)
``site``            the course website, offline (``make site``); ``objective_table``, ``notebook_timings`` feed it
``slides``          reveal.js slides, offline (``make slides``); ``tag_slides`` tags cells; ``slides_template``
``vendor_js``       the site's and slides' JavaScript, checked against its committed manifest
``pin_badges``      point the Colab/Binder badges at a release tag (``make pin-badges``)
``visible_code``    the share of visible code that builds prose or tidies plots; hides those cells' input
==================  ==========================================================================================

Nothing in the library imports this package at module level (``tests/test_layout.py`` checks it).
"""
__all__: list = []
